"""Run `rolesanywhere-operator` as a real process against the test cluster, with its webhook on 127.0.0.1.

The webhook's serving certificate comes from hack/localcluster/pki.py (SAN 127.0.0.1); the operator
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

import pytest
from localcluster import pki
from localcluster.controlplane import wait_for
from localcluster.podrunner import write_atomic_directory

from support.processes import terminate

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml"
#: The ValidatingAdmissionPolicy (and its binding) the chart installs next to the CRD.
CRD_POLICY = REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.policy.yaml"
OPERATOR = str(Path(sys.executable).with_name("rolesanywhere-operator"))
START_TIMEOUT = 60

#: ARNs of an example binding, for tests where no CreateSession is made (so nothing needs to resolve them).
EXAMPLE_TRUST_ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/11111111-2222-3333-4444-555555555555"
EXAMPLE_PROFILE = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/66666666-7777-8888-9999-000000000000"
EXAMPLE_ROLE = "arn:aws:iam::123456789012:role/s3-reader"
EXAMPLE_ARNS = {"trust_anchor_arn": EXAMPLE_TRUST_ANCHOR, "profile_arn": EXAMPLE_PROFILE, "role_arn": EXAMPLE_ROLE}


def install_crd(cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD), "-f", str(CRD_POLICY))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/rolesanywherebindings.rolesanywhere.dev"
    )


class OperatorProcess:
    """The operator running out of cluster; `restart()` kills it hard and starts it again, as a crash would."""

    def __init__(
        self, cluster, workdir: Path, *, extra_args: tuple[str, ...] = (), verify_credentials: bool = False
    ) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "operator.log"
        self.webhook_configuration = f"rolesanywhere-test-{uuid.uuid4().hex[:8]}"
        self.port = _free_port()
        # Off unless a test asks: most tests' bindings name no endpoint, and the regional one is not to be called.
        self.extra_args = (f"--verify-credentials={str(verify_credentials).lower()}", *extra_args)
        self._write_webhook_pki()
        self.process: subprocess.Popen | None = None

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
            "--resync-interval=2",
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLESANYWHERE_OPERATOR_")}
        env["KUBECONFIG"] = str(self.cluster.kubeconfig)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        wait_for(self._serving, timeout=START_TIMEOUT, what=f"the operator's webhook (log: {self.log_path})")
        return self

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
        if self.process is not None:
            terminate(self.process, grace=15)
        self.cluster.kubectl(
            "delete",
            "mutatingwebhookconfiguration",
            self.webhook_configuration,
            "--ignore-not-found",
            check=False,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def operator(cluster, tmp_path_factory):
    """The operator, running for the tests of one module."""
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator")).start()
    yield process
    process.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
