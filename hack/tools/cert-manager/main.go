// Command cert-manager-controller runs cert-manager's certificate and issuer
// controllers (CA and SelfSigned issuers only) out of cluster, against the
// kubeconfig it is given. It is the test and demo stand-in for cert-manager's
// own controller binary, built from the same public packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	controller "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Each controller package registers itself with controller.Register in init().
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// Issuer implementations register themselves with issuer.RegisterIssuer;
	// without them no Issuer ever becomes Ready.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// enabledControllers is an allow-list: transitive imports may register more.
var enabledControllers = []string{
	"issuers",
	"clusterissuers",
	"certificaterequests-approver",
	"certificaterequests-issuer-ca",
	"certificaterequests-issuer-selfsigned",
	"certificates-trigger",
	"certificates-issuing",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-readiness",
	"certificates-revision-manager",
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "path to the kubeconfig of the API server (required)")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager", "namespace holding ClusterIssuer secrets")
	enableOwnerRef := flag.Bool("enable-certificate-owner-ref", true, "make each Certificate the owner of its Secret")
	workers := flag.Int("workers", 2, "workers per controller")
	logf.InitLogs()
	flag.Parse()
	if *kubeconfig == "" {
		return fmt.Errorf("--kubeconfig is required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")

	factory, err := controller.NewContextFactory(ctx, controller.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controller.IssuerOptions{ClusterResourceNamespace: *clusterResourceNamespace},
		CertificateOptions: controller.CertificateOptions{EnableOwnerRef: *enableOwnerRef},
	})
	if err != nil {
		return err
	}
	base, err := factory.Build()
	if err != nil {
		return err
	}

	known := controller.Known()
	sort.Strings(enabledControllers)
	for _, name := range enabledControllers {
		constructor, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %q is not registered by this cert-manager version", name)
		}
		c, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("building controller %q: %w", name, err)
		}
		go func(name string) {
			if err := c.Run(*workers, ctx); err != nil {
				fmt.Fprintf(os.Stderr, "cert-manager-controller: controller %q stopped: %v\n", name, err)
				stop()
			}
		}(name)
	}
	// Informers are registered lazily by the constructors, so start them last.
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	fmt.Fprintln(os.Stderr, "cert-manager-controller: running", len(enabledControllers), "controllers")
	<-ctx.Done()
	return nil
}
