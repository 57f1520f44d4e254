// Command cert-manager-webhook runs cert-manager's admission webhook (validation and defaulting of
// Certificates, Issuers, CertificateRequests, ...) out of cluster, so the local control plane refuses what
// a real cert-manager refuses. It is the test and demo stand-in for cert-manager's own webhook binary,
// built from the same packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cert-manager/cert-manager/internal/apis/config/shared"
	config "github.com/cert-manager/cert-manager/internal/apis/config/webhook"
	"github.com/cert-manager/cert-manager/internal/webhook"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-webhook:", err)
		os.Exit(1)
	}
}

func run() error {
	// Its own flag set: packages it imports register flags of the same names on the global one.
	flags := flag.NewFlagSet("cert-manager-webhook", flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "", "path to the kubeconfig of the API server (required)")
	securePort := flags.Int("secure-port", 0, "HTTPS port the API server calls (required)")
	healthzPort := flags.Int("healthz-port", 0, "HTTP port of /healthz and /livez (required)")
	certFile := flags.String("tls-cert-file", "", "PEM serving certificate (required)")
	keyFile := flags.String("tls-private-key-file", "", "PEM key of the serving certificate (required)")
	logf.InitLogs()
	if err := flags.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *kubeconfig == "" || *securePort == 0 || *healthzPort == 0 || *certFile == "" || *keyFile == "" {
		return fmt.Errorf("--kubeconfig, --secure-port, --healthz-port, --tls-cert-file and --tls-private-key-file are required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logf.Log.WithName("webhook")
	server, err := webhook.NewCertManagerWebhookServer(log, config.WebhookConfiguration{
		SecurePort:  int32(*securePort),
		HealthzPort: int32(*healthzPort),
		KubeConfig:  *kubeconfig,
		TLSConfig: shared.TLSConfig{
			Filesystem: shared.FilesystemServingConfig{CertFile: *certFile, KeyFile: *keyFile},
		},
		MetricsListenAddress: "0",
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "cert-manager-webhook: serving on port", *securePort)
	return server.Run(ctx)
}
