"""Start and stop etcd, kube-apiserver, kube-controller-manager and cert-manager (controller and webhook)
on 127.0.0.1.

All state (certificates, etcd data, logs, the admin kubeconfig and the pids)
lives in one directory. Starting again in the same directory first stops what a
killed run left behind and wipes its data, so a stale cluster never blocks the
next start.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rolesanywhere_devkit.processes import alive, free_port, stop, wait_for

from . import pki

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "cert-manager-controller", "cert-manager-webhook")
#: The webhook configurations through which the API server has cert-manager's webhook validate and default
#: cert-manager's resources, as cert-manager's chart registers them.
CERT_MANAGER_WEBHOOK_CONFIGURATION = "cert-manager-webhook"
SERVICE_CIDR = "10.0.0.0/24"
CERT_MANAGER_NAMESPACE = "cert-manager"


class ControlPlaneError(RuntimeError):
    """The control plane did not come up; the message names the component and its log."""


def kubectl(
    bin_dir: Path, kubeconfig: Path, *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the pinned kubectl against `kubeconfig`; with `check`, a failure raises with kubectl's message."""
    result = subprocess.run(
        [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        input=input,
        check=False,
    )
    if check and result.returncode != 0:
        raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


#: What the API server's audit log records when `audit` is on: one line per request (metadata only: who,
#: verb, object) for the objects whose reads tests check (ConfigMaps, Secrets and bindings), nothing else.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "resources": [{"group": "", "resources": ["configmaps", "secrets"]},
                                             {"group": "rolesanywhere.dev"}]},
        {"level": "None"},
    ],
}


@dataclass
class ControlPlane:
    """A control plane rooted at `root`, running the binaries in `bin_dir`; with `audit`, the API server
    writes an audit log (AUDIT_POLICY) to `audit_log`.

    With `node_ip` (the local node's address, see node.py) the API server also listens where pods
    reach it, advertises that address as the `kubernetes` Service's endpoint, authorizes kubelets
    with the Node authorizer, and reaches kubelets at their InternalIP with a client certificate.
    """

    root: Path
    bin_dir: Path
    audit: bool = False
    node_ip: str | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def audit_log(self) -> Path:
        return self.log_dir / "audit.log"

    def audit_events(self) -> list[dict]:
        """The audit log's events so far (empty without `audit`)."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    # -- lifecycle ---------------------------------------------------------

    def start(self, *, cert_manager_crds: Path | None, timeout: float = 120) -> None:
        """Start every component and wait until the API serves and controllers run."""
        self.stop()
        for sub in ("etcd", "pki", "logs"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir()
        ports = {"etcd": free_port(), "etcd-peer": free_port(), "apiserver": free_port()}
        pids: dict[str, int] = {}
        self._write_state(ports, pids)
        self._write_pki()
        self._write_kubeconfig(ports["apiserver"])
        try:
            pids["etcd"] = self._spawn("etcd", self._etcd_args(ports))
            self._write_state(ports, pids)
            self._wait_http(f"http://127.0.0.1:{ports['etcd']}/health", "etcd", timeout)
            pids["kube-apiserver"] = self._spawn("kube-apiserver", self._apiserver_args(ports))
            self._write_state(ports, pids)
            self._wait_http(f"https://127.0.0.1:{ports['apiserver']}/readyz", "kube-apiserver", timeout)
            pids["kube-controller-manager"] = self._spawn(
                "kube-controller-manager", self._controller_manager_args()
            )
            self._write_state(ports, pids)
            if cert_manager_crds is not None:
                self._install_cert_manager_crds(cert_manager_crds, timeout)
                pids["cert-manager-controller"] = self._spawn(
                    "cert-manager-controller",
                    [
                        f"--kubeconfig={self.kubeconfig}",
                        f"--cluster-resource-namespace={CERT_MANAGER_NAMESPACE}",
                    ],
                )
                ports.update({"cert-manager-webhook": free_port(), "cert-manager-webhook-healthz": free_port()})
                pids["cert-manager-webhook"] = self._spawn("cert-manager-webhook", [
                    f"--kubeconfig={self.kubeconfig}",
                    f"--secure-port={ports['cert-manager-webhook']}",
                    f"--healthz-port={ports['cert-manager-webhook-healthz']}",
                    f"--tls-cert-file={self.pki_dir / 'cert-manager-webhook.crt'}",
                    f"--tls-private-key-file={self.pki_dir / 'cert-manager-webhook.key'}",
                ])
                self._write_state(ports, pids)
                self._wait_http(f"http://127.0.0.1:{ports['cert-manager-webhook-healthz']}/healthz",
                                "cert-manager-webhook", timeout)
                self._register_cert_manager_webhook(ports["cert-manager-webhook"])
            # The service-account controller creating "default" proves kube-controller-manager works;
            # pods cannot be created in a namespace before it has.
            wait_for(
                lambda: self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode
                == 0,
                timeout=timeout,
                what="kube-controller-manager to create the default service account"
                f" (log: {self.log_dir / 'kube-controller-manager.log'})",
            )
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every component recorded in the state file, newest first; tolerate a stale or missing state."""
        state = self._read_state()
        for name in reversed(COMPONENTS):
            pid = state.get("pids", {}).get(name)
            if pid and self._owns(pid):
                stop(pid, group=True)
        if self.state_file.exists():
            self.state_file.unlink()

    def running(self) -> bool:
        state = self._read_state()
        pids = state.get("pids", {})
        return bool(pids) and all(self._owns(pid) for pid in pids.values())

    # -- helpers for users of the cluster ----------------------------------

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        return kubectl(self.bin_dir, self.kubeconfig, *args, check=check, input=input)

    def version(self) -> str:
        return json.loads(self.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]

    # -- internals ---------------------------------------------------------

    def _etcd_args(self, ports: dict[str, int]) -> list[str]:
        client, peer = f"http://127.0.0.1:{ports['etcd']}", f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self, ports: dict[str, int]) -> list[str]:
        p = self.pki_dir
        audit: list[str] = []
        if self.audit:
            policy = self.root / "audit-policy.json"
            policy.write_text(json.dumps(AUDIT_POLICY))
            audit = [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
                     "--audit-log-format=json", "--audit-log-maxsize=100", "--audit-log-maxbackup=1"]
        return [
            *audit,
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            *(self._node_apiserver_args() if self.node_ip else [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",
            ]),
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--service-account-issuer=https://127.0.0.1:{ports['apiserver']}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
        ]

    def _node_apiserver_args(self) -> list[str]:
        # One bind address only: all addresses, so both 127.0.0.1 (kubectl, the tests) and the node's
        # bridge address (pods, through the `kubernetes` Service) reach it; node.py keeps every other
        # interface out with a firewall rule.
        p = self.pki_dir
        return [
            "--bind-address=0.0.0.0",
            f"--advertise-address={self.node_ip}",
            "--endpoint-reconciler-type=lease",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _controller_manager_args(self) -> list[str]:
        p = self.pki_dir
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            "--use-service-account-credentials=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
        ]

    def _write_pki(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        ca = pki.issue("rolesanywhere-local-cluster-ca", now=now, is_ca=True, key_kind="ec-p256")
        ca.write(self.pki_dir, "ca")
        pki.issue(
            "kube-apiserver",
            now=now,
            issuer=ca,
            server=True,
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ip_addresses=("127.0.0.1", "10.0.0.1", *([self.node_ip] if self.node_ip else [])),
        ).write(self.pki_dir, "apiserver")
        pki.issue("admin", now=now, issuer=ca, client=True, organizations=("system:masters",)).write(
            self.pki_dir, "admin"
        )
        if self.node_ip:
            pki.issue("kube-apiserver-kubelet-client", now=now, issuer=ca, client=True).write(
                self.pki_dir, "apiserver-kubelet-client"
            )
        pki.issue("cert-manager-webhook", now=now, issuer=ca, server=True, ip_addresses=("127.0.0.1",)).write(
            self.pki_dir, "cert-manager-webhook"
        )
        pki.write_rsa_keypair(self.pki_dir / "sa.key", self.pki_dir / "sa.pub")

    def _write_kubeconfig(self, port: int) -> None:
        write_kubeconfig(self.kubeconfig, f"https://127.0.0.1:{port}", self.pki_dir / "ca.crt",
                         self.pki_dir / "admin.crt", self.pki_dir / "admin.key", user="admin")

    def api_port(self) -> int:
        return int(self._read_state()["ports"]["apiserver"])

    def _install_cert_manager_crds(self, crds_dir: Path, timeout: float) -> None:
        files = sorted(crds_dir.glob("cert-manager.io_*.yaml"))
        if not files:
            raise ControlPlaneError(f"no cert-manager CRDs in {crds_dir}")
        args = ["apply", "--server-side", "--force-conflicts"]
        for f in files:
            args += ["-f", str(f)]
        self.kubectl(*args)
        self.kubectl("wait", "--for=condition=Established", f"--timeout={int(timeout)}s",
                     *[f"crd/{f.name.split('_', 1)[1].removesuffix('.yaml')}.cert-manager.io" for f in files])
        self.kubectl("create", "namespace", CERT_MANAGER_NAMESPACE, check=False)

    def _register_cert_manager_webhook(self, port: int) -> None:
        """Point the API server at cert-manager's webhook for cert-manager's resources, as its chart does:
        every create and update is validated (and created ones defaulted) by cert-manager's own code."""
        ca_bundle = base64.b64encode((self.pki_dir / "ca.crt").read_bytes()).decode()

        def webhook(path: str, operations: list[str]) -> dict:
            return {
                "name": "webhook.cert-manager.io",
                "clientConfig": {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle},
                "rules": [{"apiGroups": ["cert-manager.io", "acme.cert-manager.io"], "apiVersions": ["v1"],
                           "operations": operations, "resources": ["*/*"]}],
                "namespaceSelector": {"matchExpressions": [
                    {"key": "cert-manager.io/disable-validation", "operator": "NotIn", "values": ["true"]}]},
                "admissionReviewVersions": ["v1"], "matchPolicy": "Equivalent", "sideEffects": "None",
                "failurePolicy": "Fail", "timeoutSeconds": 30,
            }

        configurations = [
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
             "metadata": {"name": CERT_MANAGER_WEBHOOK_CONFIGURATION},
             "webhooks": [webhook("/validate", ["CREATE", "UPDATE"])]},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
             "metadata": {"name": CERT_MANAGER_WEBHOOK_CONFIGURATION},
             "webhooks": [webhook("/mutate", ["CREATE"])]},
        ]
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     input=json.dumps({"apiVersion": "v1", "kind": "List", "items": configurations}))

    def _spawn(self, name: str, args: list[str]) -> int:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the starting command (make cluster-up) and its Ctrl-C
                cwd=self.root,
            )
        return proc.pid

    def _wait_http(self, url: str, component: str, timeout: float) -> None:
        context = None
        if url.startswith("https"):
            context = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
            context.load_cert_chain(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        log = self.log_dir / f"{component}.log"
        state = self._read_state()
        pid = state["pids"][component]

        def healthy() -> bool:
            if not alive(pid):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise ControlPlaneError(f"{component} exited during start-up; last lines of {log}:\n{tail}")
            try:
                with urllib.request.urlopen(url, context=context, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=timeout, what=f"{component} at {url} (log: {log})")

    def _owns(self, pid: int) -> bool:
        """True when `pid` is alive and is one of ours (its command line names our root)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return str(self.root) in cmdline

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, ports: dict[str, int], pids: dict[str, int]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ports": ports, "pids": pids}))
        tmp.replace(self.state_file)


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, *, user: str) -> None:
    """A kubeconfig for `server` that embeds the CA and a client certificate, written atomically (0600)."""

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)
