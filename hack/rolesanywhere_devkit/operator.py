"""Run `rolesanywhere-operator` as a real process against the test cluster, with its webhook on 127.0.0.1.

It runs with the chart's RBAC, not the cluster admin's: the harness applies the ClusterRole the chart
renders (rbac.yaml) to the chart's service account and hands the operator a token of that account, so
every test also proves the operator works with what the chart grants (Secrets: only where
`grant_secret_read` bound the chart's secret-reader role, as secretAccess.namespaces would).

The webhook's serving certificate comes from localcluster.pki (SAN 127.0.0.1); the operator
registers its MutatingWebhookConfiguration (by URL, with that CA) under a name unique to the run, and
the harness deletes it on stop, so a stopped operator never blocks pod creation for other tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from localcluster import pki
from localcluster.podrunner import write_atomic_directory
from rolesanywhere_operator import constants as c

from rolesanywhere_devkit import REPO
from rolesanywhere_devkit.processes import free_port, terminate, wait_for

CRD = REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml"
#: The ValidatingAdmissionPolicy (and its binding) the chart installs next to the CRD.
CRD_POLICY = REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.policy.yaml"
OPERATOR = str(Path(sys.executable).with_name("rolesanywhere-operator"))
START_TIMEOUT = 60
CHART = REPO / "charts" / "rolesanywhere-operator"
#: Where the harness installs the chart's service account, as `helm install -n rolesanywhere-system` would.
OPERATOR_NAMESPACE = "rolesanywhere-system"
#: Names the chart gives its service account and ClusterRoles (release name rolesanywhere-operator).
OPERATOR_ACCOUNT = "rolesanywhere-operator"
SECRET_READER_ROLE = f"{OPERATOR_ACCOUNT}-secret-reader"

#: ARNs of an example binding, for tests where no CreateSession is made (so nothing needs to resolve them).
EXAMPLE_TRUST_ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/11111111-2222-3333-4444-555555555555"
EXAMPLE_PROFILE = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/66666666-7777-8888-9999-000000000000"
EXAMPLE_ROLE = "arn:aws:iam::123456789012:role/s3-reader"
EXAMPLE_ARNS = {"trust_anchor_arn": EXAMPLE_TRUST_ANCHOR, "profile_arn": EXAMPLE_PROFILE, "role_arn": EXAMPLE_ROLE}


def install_chart_rbac(cluster) -> None:
    """The chart's service account and RBAC (rendered by helm from the chart), applied to the cluster."""
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    rendered = subprocess.run(
        [str(cluster.bin_dir / "helm"), "template", OPERATOR_ACCOUNT, str(CHART), "--namespace", OPERATOR_NAMESPACE,
         "--kube-version", server,
         "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=rendered)


def allow_webhook_configuration(cluster, name: str, account: tuple[str, str]) -> None:
    """The one grant beyond the chart's: get/patch of this run's webhook configuration. The chart names
    it after the release; each harness run uses its own name, so a stopped operator's never lingers."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [{"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
                   "resourceNames": [name], "verbs": ["get", "patch"]}],
    }
    role_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account[1], "namespace": account[0]}],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": [role, role_binding]}))


def operator_kubeconfig(cluster, path: Path, account: tuple[str, str]) -> Path:
    """A kubeconfig for the cluster that authenticates as service account (namespace, name), by a bound token."""
    namespace, name = account
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=24h").stdout
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    admin["users"] = [{"name": name, "user": {"token": token.strip()}}]
    admin["contexts"][0]["context"]["user"] = name
    path.write_text(json.dumps(admin))
    return path


def grant_secret_read(cluster, namespace: str) -> None:
    """Let the operator read Secrets in `namespace`, as the chart's secretAccess.namespaces does."""
    result = cluster.kubectl("create", "rolebinding", SECRET_READER_ROLE, "-n", namespace,
                             f"--clusterrole={SECRET_READER_ROLE}",
                             f"--serviceaccount={OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}", check=False)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise AssertionError(f"kubectl create rolebinding failed: {result.stderr}")


def install_crd(cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD), "-f", str(CRD_POLICY))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/rolesanywherebindings.rolesanywhere.dev"
    )


#: The operators running now, so a failing test's report can show what each was doing (pytest_plugin.py).
RUNNING: set[OperatorProcess] = set()


class OperatorProcess:
    """The operator running out of cluster; `restart()` kills it hard and starts it again, as a crash would."""

    def __init__(
        self, cluster, workdir: Path, *, extra_args: tuple[str, ...] = (), verify_credentials: bool = False,
        service_account: tuple[str, str] | None = None,
    ) -> None:
        """`service_account`: (namespace, name) of a chart release's account to run as; by default the
        harness installs the chart's RBAC for the account a release named rolesanywhere-operator has."""
        self.cluster = cluster
        self.service_account = service_account
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "operator.log"
        self.webhook_configuration = f"rolesanywhere-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        # Off unless a test asks: most tests' bindings name no endpoint, and the regional one is not to be called.
        self.extra_args = (f"--verify-credentials={str(verify_credentials).lower()}", *extra_args)
        self._write_webhook_pki()
        self.process: subprocess.Popen | None = None

    @property
    def identity_url(self) -> str:
        """The identity endpoint, for sidecars run on this machine (per-pod identity)."""
        return f"https://127.0.0.1:{self.port}/{c.IDENTITY_HANDLER_ID}"

    @property
    def ca_path(self) -> Path:
        """The CA bundle of the webhook's and the identity endpoint's serving certificate."""
        return self.tls_dir / "ca.crt"

    @property
    def tls_dir(self) -> Path:
        return self.workdir / "webhook-tls"

    def _write_webhook_pki(self) -> bytes:
        """A new CA and serving certificate, swapped in at once as the kubelet does with a mounted Secret."""
        now = dt.datetime.now(dt.UTC)
        ca = pki.issue(f"rolesanywhere-test-webhook-ca-{uuid.uuid4().hex[:6]}", now=now, is_ca=True)
        serving = pki.issue("127.0.0.1", now=now, issuer=ca, server=True, ip_addresses=("127.0.0.1",))
        write_atomic_directory(
            self.tls_dir, {"tls.crt": serving.cert_pem, "tls.key": serving.key_pem(), "ca.crt": ca.cert_pem}, 0o600
        )
        return ca.cert_pem

    def renew_webhook_certificate(self) -> bytes:
        """Replace the serving certificate and its CA, as a cert-manager renewal would; the new CA PEM."""
        return self._write_webhook_pki()

    def start(self) -> OperatorProcess:
        install_crd(self.cluster)
        if self.service_account is None:
            install_chart_rbac(self.cluster)
        account = self.service_account or (OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
        allow_webhook_configuration(self.cluster, self.webhook_configuration, account)
        args = [
            OPERATOR,
            "--webhook-listen-address=127.0.0.1",
            "--webhook-host=127.0.0.1",
            f"--webhook-port={self.port}",
            f"--webhook-cert-file={self.tls_dir / 'tls.crt'}",
            f"--webhook-key-file={self.tls_dir / 'tls.key'}",
            f"--webhook-ca-file={self.tls_dir / 'ca.crt'}",
            "--webhook-reload-interval=0.5",
            f"--webhook-configuration={self.webhook_configuration}",
            f"--identity-url={self.identity_url}",
            "--resync-interval=2",
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLESANYWHERE_OPERATOR_")}
        env["KUBECONFIG"] = str(operator_kubeconfig(self.cluster, self.workdir / "kubeconfig", account))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        RUNNING.add(self)
        wait_for(self._serving, timeout=START_TIMEOUT, what=f"the operator's webhook (log: {self.log_path})")
        return self

    def stacks(self) -> str:
        """Every thread's and the event loop's Python stack now (py-spy), for a report on a stalled operator."""
        if self.process is None or self.process.poll() is not None:
            return "not running"
        spy = Path(sys.executable).with_name("py-spy")
        try:
            result = subprocess.run([str(spy), "dump", "--locals", "--pid", str(self.process.pid)],
                                    capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"py-spy failed: {error}"
        return result.stdout + result.stderr

    def _serving(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"the operator exited; its log:\n{self.log()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            return False
        result = self.cluster.kubectl(
            "get", "mutatingwebhookconfiguration", self.webhook_configuration, "-o", "json", check=False
        )
        if result.returncode != 0:
            return False
        url = json.loads(result.stdout)["webhooks"][0]["clientConfig"].get("url", "")
        return url.startswith(f"https://127.0.0.1:{self.port}/")

    def kill(self) -> None:
        """Stop the process at once (SIGKILL): no clean-up handlers run, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        RUNNING.discard(self)
        if self.process is not None:
            terminate(self.process, grace=15)
        for kind in ("mutatingwebhookconfiguration", "clusterrolebinding", "clusterrole"):
            self.cluster.kubectl("delete", kind, self.webhook_configuration, "--ignore-not-found", check=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- Manifests ----------------------------------------------------------------------------------------


def ca_issuer(cluster, namespace: str, ca: pki.Issued, name: str = "ca") -> None:
    """A cert-manager CA Issuer signing with `ca`."""
    key_pem = ca.key_pem(fmt="pkcs8").decode()
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-key-pair"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": ca.cert_pem.decode(), "tls.key": key_pem},
        },
        namespace,
    )
    cluster.apply(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": name},
            "spec": {"ca": {"secretName": f"{name}-key-pair"}},
        },
        namespace,
    )


def sidecar_endpoint(url: str) -> dict:
    """spec.sidecar for a test's CreateSession endpoint: the emulator serves plain http, which a binding
    must allow explicitly."""
    return {"endpoint": url, **({"allowInsecureEndpoint": True} if url.startswith("http://") else {})}


def binding(
    name: str, *, trust_anchor_arn: str, profile_arn: str, role_arn: str, issuer: str = "ca", **spec
) -> dict:
    return {
        "apiVersion": "rolesanywhere.dev/v1alpha1",
        "kind": "RolesAnywhereBinding",
        "metadata": {"name": name},
        "spec": {
            "trustAnchorArn": trust_anchor_arn,
            "profileArn": profile_arn,
            "roleArn": role_arn,
            "certificate": {"issuerRef": {"name": issuer}},
            **spec,
        },
    }


def deployment(
    name: str,
    *,
    annotations: dict | None = None,
    template_annotations: dict | None = None,
    env: dict | None = None,
    command: list[str] | None = None,
) -> dict:
    container = {"name": "app", "image": "app:1", "command": command or ["sleep", "3600"]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": template_annotations or {}},
                "spec": {"containers": [container]},
            },
        },
    }


def pods(cluster, namespace: str, selector: str) -> list[dict]:
    result = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
    return json.loads(result.stdout)["items"]


def binding_status(cluster, namespace: str, name: str) -> dict:
    return cluster.get("rolesanywherebinding", name, namespace).get("status") or {}


def condition(status: dict, kind: str) -> dict:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})
