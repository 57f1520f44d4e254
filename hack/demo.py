"""`make demo`: a pod gets AWS credentials through IAM Roles Anywhere and lists S3 buckets; offline.

The classic Roles Anywhere walkthrough, on the local cluster (hack/localcluster) with moto standing in
for AWS and the emulator for the Roles Anywhere service. By default (as root) it runs the way a user
runs the product, on a real node (kubelet + containerd):

  1. the control plane with cert-manager and a node (reused when one already runs in --root);
  2. `helm install` of the chart with the image built from the repository's Dockerfile: two operator
     replicas in pods, the webhook reached through its Service with cert-manager's serving certificate;
  3. a private CA: a self-signed root Certificate and a CA Issuer signing with it;
  4. moto, IAM authentication on: S3 buckets, and a role that may only read S3 (on the node's address,
     where pods reach it);
  5. the Roles Anywhere emulator: a trust anchor trusting the private CA, a profile for the role,
     created with AWS's defaults (it accepts no role session name, and the binding asks for none);
  6. a RolesAnywhereBinding, until Ready (cert-manager issued its workload certificate) and
     CredentialsVerified (the operator's own CreateSession with that certificate was accepted);
  7. a Deployment of the app image annotated with the binding, whose container runs `aws s3 ls` with
     only the injected credentials: 2/2 Ready on the node, the buckets in its log, `kubectl exec` works;
  8. the same Deployment without the annotation: `aws s3 ls` fails for want of credentials;
  9. `kubectl get rab`, `kubectl get pods -o wide`.

Steps 3, 6, 7 and 8 apply the manifests in hack/demo/; hack/demo/README.md tells the same story for a
person running it by hand, on this cluster or their own.

Without root there is no node (it makes a bridge, network namespaces, iptables chains): the demo says so
and runs the same scenario with the pod runner (localcluster.podrunner, a process emulation of pods,
with the operator out of cluster), as `--pod-runner` asks for explicitly.

Exit status: 0 only when both outcomes are the expected ones; 1 otherwise; 130 when interrupted.
Every process the demo starts (moto, the emulator, with --pod-runner the operator and the pods'
processes) is stopped on exit, Ctrl-C included. The cluster keeps running (unless --stop-cluster), so
kubectl can look around afterwards; the next run reuses it and starts the demo namespace afresh.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from localcluster import (
    DEFAULT_ROOT,
    ToolsUnavailable,
    cert_manager_crds,
    node_images,
    node_tools_bin,
    tools_bin,
)
from localcluster.controlplane import ControlPlane, ControlPlaneError
from localcluster.node import NODE_NAME, start_cluster, stop_cluster
from localcluster.podrunner import PodRunner, PodRunnerError
from rolesanywhere_devkit.aws import (
    LOOPBACK,
    S3_READ_ONLY_POLICY,
    EmulatorProcess,
    MotoServer,
    arn,
    emulator_config,
)
from rolesanywhere_devkit.console import Console
from rolesanywhere_devkit.nodepods import (
    HOST_FOR_PODS,
    ChartInstallError,
    NodeCluster,
    install_operator_chart,
    only_pod,
    statuses,
    wait_for_ready,
)
from rolesanywhere_devkit.operator import (
    OPERATOR_NAMESPACE,
    SECRET_READER_ROLE,
    OperatorProcess,
    deployment,
    grant_secret_read,
)
from rolesanywhere_devkit.processes import TimedOut, children_in_our_group, stop, wait_for
from rolesanywhere_operator.constants import BINDING_ANNOTATION, INJECTED_LABEL, SIDECAR_CONTAINER

#: The manifests the steps apply (hack/demo/*.yaml), with `${NAME}` where the run fills in a value.
MANIFESTS = Path(__file__).parent / "demo"
NAMESPACE = "rolesanywhere-demo"
BUCKETS = ("rolesanywhere-demo-invoices", "rolesanywhere-demo-reports")
ROLE_NAME = "s3-read-only"
BINDING = "s3-reader"
CA_ISSUER = "demo-ca"
ROOT_CA_SECRET = "demo-root-ca"
#: Fixed, unlike the tests' random names, so a killed run's configuration is replaced by the next.
WEBHOOK_CONFIGURATION = "rolesanywhere-demo"
APP_WITH_ROLE = "s3-lister"
APP_WITHOUT_ROLE = "s3-lister-no-binding"
LIST_BUCKETS = ["aws", "s3", "ls"]
#: On the node, the app container (hack/demo/s3-lister*.yaml) lists the buckets, prints this and the exit
#: code, and stays up for `kubectl exec`.
EXIT_CODE_LINE = "aws s3 ls exited with"
CREDENTIALS_ERROR = "Unable to locate credentials"
STEPS = 9
#: Seconds any one wait may take before the demo gives up and says what it waited for.
TIMEOUT = 90
INTERRUPTED = 130
#: HTTP status of an accepted CreateSession.
CREATED = 201


class DemoError(RuntimeError):
    """A step could not be done; the message says what was expected and where to look."""


def manifest(name: str, **values: str) -> list[dict]:
    """The objects of hack/demo/NAME.yaml with each `${KEY}` replaced by values[KEY], as `envsubst` would."""
    path = MANIFESTS / f"{name}.yaml"

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise DemoError(f"{path}: ${{{match.group(1)}}} has no value in this run (given: {', '.join(values)})")
        return values[match.group(1)]

    return [doc for doc in yaml.safe_load_all(re.sub(r"\$\{([A-Z_]+)\}", value, path.read_text())) if doc]


# --- Printing -------------------------------------------------------------------------------------------


# --- State shared by the steps --------------------------------------------------------------------------


@dataclass
class Demo:
    root: Path  # the control plane's state directory
    console: Console
    stack: contextlib.ExitStack  # stops what the steps start, newest first
    on_node: bool = True  # False: the pod runner runs the pods, the operator runs out of cluster
    plane: ControlPlane | None = None
    cluster: NodeCluster | None = None  # on the node: the plane with the node's images
    root_ca_pem: bytes = b""
    moto: MotoServer | None = None
    role_arn: str = ""
    emulator: EmulatorProcess | None = None
    arns: dict[str, str] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        """Configuration and logs of this run (kept after it, for a look)."""
        return self.root / "demo"

    def kubectl(self, *args: str, input: str | None = None) -> str:
        assert self.plane is not None
        return self.plane.kubectl(*args, input=input).stdout

    def apply(self, manifest: dict) -> None:
        self.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(manifest))

    def get(self, kind: str, name: str) -> dict | None:
        assert self.plane is not None
        result = self.plane.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None


@dataclass(frozen=True)
class Outcome:
    expected: bool
    summary: str


# --- The steps --------------------------------------------------------------------------------------------


def start_cluster_without_node(demo: Demo, *, restart: bool) -> None:
    plane = ControlPlane(demo.root, tools_bin())
    demo.plane = plane
    if not restart and plane.running() and _serves_cert_manager(plane):
        demo.console.note(f"reusing the control plane running in {demo.root}")
    else:
        demo.console.doing("starting etcd, kube-apiserver, kube-controller-manager and cert-manager")
        plane.start(cert_manager_crds=cert_manager_crds())
    demo.console.note(f"Kubernetes {plane.version()}, API server on 127.0.0.1, no kubelet (the pod runner runs pods)")
    demo.console.note("to watch from a second terminal:")
    demo.console.note(f"export KUBECONFIG={plane.kubeconfig}", prefix="  ")
    demo.console.note(f'export PATH="{plane.bin_dir}:$PATH"   # the pinned kubectl', prefix="  ")


def start_node_cluster(demo: Demo, *, restart: bool) -> None:
    bin_dir = node_tools_bin()
    images = node_images()
    plane = ControlPlane(demo.root, bin_dir)
    demo.plane = plane
    if not restart and plane.running() and _serves_cert_manager(plane) and _node_ready(plane):
        demo.console.note(f"reusing the cluster and node {NODE_NAME} running in {demo.root}")
    else:
        demo.console.doing("starting etcd, kube-apiserver, kube-controller-manager, cert-manager, kube-scheduler, "
                           "containerd, the kubelet and kube-proxy")
        stop_cluster(demo.root)  # a control plane without a node, or a broken one, in the same directory
        plane, _ = start_cluster(demo.root, bin_dir, images, cert_manager_crds=cert_manager_crds())
        demo.plane = plane
    demo.cluster = NodeCluster(plane.kubeconfig, bin_dir, plane, images=images)
    demo.console.note(f"Kubernetes {plane.version()}, node {NODE_NAME} (containerd, runc); images built here:")
    for name in ("operator", "sidecar", "app"):
        demo.console.note(f"{name}: {images[name].ref}", prefix="  ")
    demo.console.note("to watch from a second terminal:")
    demo.console.note(f"export KUBECONFIG={plane.kubeconfig}", prefix="  ")
    demo.console.note(f'export PATH="{plane.bin_dir}:$PATH"   # the pinned kubectl', prefix="  ")


def _node_ready(plane: ControlPlane) -> bool:
    found = plane.kubectl("get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                          check=False)
    return found.returncode == 0 and found.stdout.strip() == "True"


def _serves_cert_manager(plane: ControlPlane) -> bool:
    return plane.kubectl("get", "crd", "certificates.cert-manager.io", check=False).returncode == 0


def create_private_ca(demo: Demo) -> None:
    reset_namespace(demo)
    objects = manifest("private-ca")
    demo.console.doing("kubectl apply -f hack/demo/private-ca.yaml: " + ", ".join(
        f"{o['kind']} {o['metadata']['name']}" for o in objects))
    for obj in objects:
        demo.apply(obj)
    demo.console.doing("waiting for cert-manager to issue the root CA")
    wait_ready(demo, "certificate", ROOT_CA_SECRET)
    wait_ready(demo, "issuer", CA_ISSUER)
    secret = demo.get("secret", ROOT_CA_SECRET) or {}
    demo.root_ca_pem = base64.b64decode(secret["data"]["ca.crt"])
    demo.console.note(f"Issuer {CA_ISSUER} signs with the root CA in Secret {NAMESPACE}/{ROOT_CA_SECRET}")


def reset_namespace(demo: Demo) -> None:
    """Start from an empty demo namespace (bindings carry no finalizer: it goes whether or not the operator runs)."""
    assert demo.plane is not None
    if demo.plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0:
        demo.console.doing(f"deleting namespace {NAMESPACE} left by an earlier run")
        # Bindings first, so the garbage collector is already removing their Certificates when the namespace
        # controller starts on the rest.
        demo.kubectl("delete", "rolesanywherebindings", "--all", "-n", NAMESPACE, f"--timeout={TIMEOUT}s")
        demo.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
        wait_for(lambda: demo.plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0,
                 timeout=TIMEOUT, what=f"namespace {NAMESPACE} to be deleted")
    demo.kubectl("create", "namespace", NAMESPACE)
    # Pods cannot be created before the service-account controller has made "default".
    wait_for(lambda: demo.get("serviceaccount", "default"), timeout=TIMEOUT,
             what=f"the default service account in {NAMESPACE}")
    demo.console.note(f"namespace {NAMESPACE} created")


def start_moto(demo: Demo) -> None:
    demo.console.doing("starting the moto server")
    demo.moto = MotoServer(host=HOST_FOR_PODS if demo.on_node else LOOPBACK)
    demo.stack.callback(demo.moto.stop)
    s3 = demo.moto.client("s3")
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    demo.role_arn = demo.moto.create_role(ROLE_NAME, S3_READ_ONLY_POLICY)
    demo.console.note(f"moto on {demo.moto.endpoint}: IAM authentication on, every call must be signed by a known key")
    demo.console.note(f"buckets: {', '.join(BUCKETS)}")
    actions = ", ".join(S3_READ_ONLY_POLICY["Statement"][0]["Action"])
    demo.console.note(f"role {demo.role_arn}: may do {actions}; trusts rolesanywhere.amazonaws.com")


def start_emulator(demo: Demo) -> None:
    assert demo.moto is not None
    demo.arns = {"trust_anchor_arn": arn("trust-anchor"), "profile_arn": arn("profile"), "role_arn": demo.role_arn}
    bundle = demo.workdir / "trust-anchor.pem"
    bundle.write_bytes(demo.root_ca_pem)
    document = emulator_config(
        demo.moto,
        trust_anchors=[{"arn": demo.arns["trust_anchor_arn"], "caBundle": str(bundle)}],
        # As `aws rolesanywhere create-profile` makes it: the binding sends no session name, so it needs none.
        profiles=[{"arn": demo.arns["profile_arn"], "roleArns": [demo.role_arn]}],
    )
    demo.console.doing("starting rolesanywhere-emulator")
    demo.emulator = EmulatorProcess.from_document(document, demo.workdir,
                                                  host=HOST_FOR_PODS if demo.on_node else LOOPBACK)
    demo.stack.callback(demo.emulator.stop)
    demo.console.note(f"CreateSession endpoint {demo.emulator.url}")
    demo.console.note(f"trust anchor {demo.arns['trust_anchor_arn']}: the root CA of Issuer {CA_ISSUER}")
    demo.console.note(f"profile      {demo.arns['profile_arn']}: role {ROLE_NAME}")


def start_operator(demo: Demo) -> None:
    operator = OperatorProcess(demo.plane, demo.workdir / "operator", verify_credentials=True)
    operator.webhook_configuration = WEBHOOK_CONFIGURATION
    demo.stack.callback(operator.stop)  # also deletes the webhook configuration: no pod is refused later
    # A killed run's configuration points at a dead port, and pods are refused while it is there.
    demo.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "--ignore-not-found")
    demo.console.doing("installing the CRD and starting rolesanywhere-operator")
    operator.start()
    demo.console.note(f"webhook https://127.0.0.1:{operator.port}, registered as MutatingWebhookConfiguration "
                      f"{WEBHOOK_CONFIGURATION}")
    demo.console.note(f"log: {operator.log_path}")


def install_operator(demo: Demo) -> None:
    assert demo.cluster is not None
    # A killed pod-runner run's configuration points at a dead port, and pods are refused while it is there.
    demo.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "--ignore-not-found")
    demo.console.doing(f"helm install {OPERATOR_NAMESPACE}: the chart, image {demo.cluster.image('operator')}, "
                       "until its replicas are Ready")
    install_operator_chart(demo.cluster, demo.workdir / "helm-home")
    demo.console.note(f"$ kubectl -n {OPERATOR_NAMESPACE} get pods -o wide", prefix="  ")
    demo.console.note(demo.kubectl("get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "wide"), prefix="  ")
    demo.console.note("the webhook answers at its Service, with the serving certificate cert-manager issued")


def create_binding(demo: Demo) -> None:
    assert demo.emulator is not None
    # The operator runs with the chart's RBAC, which reads no Secret; its check of the credentials signs
    # with the binding's key, so the demo's namespace is one the admin lists in secretAccess.namespaces.
    grant_secret_read(demo.plane, NAMESPACE)
    demo.console.note(f"the operator may read Secrets in {NAMESPACE} only (RoleBinding {SECRET_READER_ROLE})")
    for obj in manifest("binding", TRUST_ANCHOR_ARN=demo.arns["trust_anchor_arn"], PROFILE_ARN=demo.arns["profile_arn"],
                        ROLE_ARN=demo.arns["role_arn"], ROLESANYWHERE_ENDPOINT=demo.emulator.url):
        demo.apply(obj)
    demo.console.note(f"RolesAnywhereBinding {BINDING}: role {ROLE_NAME}, certificate from Issuer {CA_ISSUER}")
    demo.console.doing("waiting for cert-manager to issue the workload certificate and the binding to be Ready")
    status = wait_ready(demo, "rolesanywherebinding", BINDING)
    certificate = status.get("certificate") or {}
    demo.console.note(f"certificate {certificate.get('subject')}, serial {certificate.get('serialNumber')}, "
                      f"valid until {certificate.get('notAfter')}")
    demo.console.doing("waiting for the operator's CreateSession with that certificate")
    verified = wait_condition(demo, "rolesanywherebinding", BINDING, "CredentialsVerified")
    demo.console.note(f"CredentialsVerified: {verified.get('message')}")


def list_buckets_with_binding(demo: Demo) -> Outcome:
    pod = create_workload(demo, APP_WITH_ROLE, {BINDING_ANNOTATION: BINDING})
    labels = pod["metadata"].get("labels") or {}
    if labels.get(INJECTED_LABEL) != BINDING:
        raise DemoError(f"the webhook did not inject pod {pod['metadata']['name']} (no label {INJECTED_LABEL}); "
                        f"see the operator's log in {demo.workdir / 'operator'}")
    sidecar = next(c for c in pod["spec"].get("initContainers") or [] if c["name"] == SIDECAR_CONTAINER)
    demo.console.note(f"injected: sidecar {SIDECAR_CONTAINER} ({' '.join(sidecar.get('command') or [])}), "
                      f"app env AWS_CONTAINER_CREDENTIALS_FULL_URI")
    result = run_pod(demo, pod, with_sidecar=True)
    listed = result.returncode == 0 and all(bucket in result.stdout for bucket in BUCKETS)
    if listed:
        return Outcome(True, f"with the binding, the app listed {len(BUCKETS)} buckets")
    return Outcome(False, f"with the binding, `aws s3 ls` should list {', '.join(BUCKETS)} but exited "
                          f"{result.returncode}; the sidecar's log: "
                          f"{demo.workdir / 'pods' / APP_WITH_ROLE / 'logs' / (SIDECAR_CONTAINER + '.log')}")


def list_buckets_without_binding(demo: Demo) -> Outcome:
    pod = create_workload(demo, APP_WITHOUT_ROLE, {})
    if INJECTED_LABEL in (pod["metadata"].get("labels") or {}):
        raise DemoError(f"pod {pod['metadata']['name']} was injected although its Deployment has no annotation")
    demo.console.note("not injected: no sidecar, no credentials")
    result = run_pod(demo, pod, with_sidecar=False)
    if result.returncode != 0 and CREDENTIALS_ERROR in result.stderr:
        return Outcome(True, f'without it, the same app failed: "{CREDENTIALS_ERROR}"')
    return Outcome(False, f"without the binding, `aws s3 ls` should fail with {CREDENTIALS_ERROR!r} but exited "
                          f"{result.returncode}")


def list_buckets_on_the_node(demo: Demo, name: str, annotated: bool) -> Outcome:
    """The app's Deployment, its pod on the node until its app said how `aws s3 ls` went."""
    assert demo.moto is not None and demo.cluster is not None
    for obj in manifest(name, APP_IMAGE=demo.cluster.image("app"), AWS_ENDPOINT_URL=demo.moto.endpoint):
        demo.apply(obj)
    shown = f"{BINDING_ANNOTATION}: {BINDING}" if annotated else "no annotation"
    demo.console.note(f"Deployment {name} ({shown}), image {demo.cluster.image('app')}, app: {shlex.join(LIST_BUCKETS)}")
    demo.console.doing("waiting for its pod: created through the webhook, scheduled, started by the kubelet")
    pod = only_pod(demo.cluster, NAMESPACE, f"app={name}", timeout=TIMEOUT)
    injected = (pod["metadata"].get("labels") or {}).get(INJECTED_LABEL) == BINDING
    if injected != annotated:
        raise DemoError(f"pod {pod['metadata']['name']} was {'' if injected else 'not '}injected; see the "
                        f"operator's log: kubectl -n {OPERATOR_NAMESPACE} logs deploy/rolesanywhere-operator")
    pod = wait_for_ready(demo.cluster, NAMESPACE, pod["metadata"]["name"], timeout=TIMEOUT)
    ready = ", ".join(f"{n} ready" for n, s in statuses(pod).items() if s.get("ready"))
    demo.console.note(f"pod {pod['metadata']['name']} on {pod['spec']['nodeName']}: {ready}")
    if annotated:
        show_session(demo)

    def exit_line() -> str | None:
        log = demo.kubectl("logs", "-n", NAMESPACE, pod["metadata"]["name"], "-c", "app")
        return log if EXIT_CODE_LINE in log else None

    log = wait_for(exit_line, timeout=TIMEOUT, what=f"the app of {pod['metadata']['name']} to run {LIST_BUCKETS}")
    demo.console.note(f"$ kubectl -n {NAMESPACE} logs {pod['metadata']['name']} -c app", prefix="  ")
    demo.console.note(log, prefix="  ")
    code = log.split(EXIT_CODE_LINE, 1)[1].split()[0]
    if annotated:
        demo.console.note(f"$ kubectl -n {NAMESPACE} exec deploy/{name} -c app -- aws sts get-caller-identity",
                          prefix="  ")
        demo.console.note(demo.kubectl("exec", "-n", NAMESPACE, f"deploy/{name}", "-c", "app", "--",
                                       "aws", "sts", "get-caller-identity", "--output", "text"), prefix="  ")
        if code == "0" and all(bucket in log for bucket in BUCKETS):
            return Outcome(True, f"with the binding, the app listed {len(BUCKETS)} buckets, in a container on {NODE_NAME}")
        return Outcome(False, f"with the binding, `aws s3 ls` should list {', '.join(BUCKETS)} but exited {code}; "
                              f"the sidecar's log: kubectl -n {NAMESPACE} logs deploy/{name} -c {SIDECAR_CONTAINER}")
    if code != "0" and CREDENTIALS_ERROR in log:
        return Outcome(True, f'without it, the same app failed: "{CREDENTIALS_ERROR}"')
    return Outcome(False, f"without the binding, `aws s3 ls` should fail with {CREDENTIALS_ERROR!r} but exited {code}")


def show_bindings(demo: Demo) -> None:
    demo.console.note(f"$ kubectl get rab -n {NAMESPACE}", prefix="  ")
    demo.console.note(demo.kubectl("get", "rab", "-n", NAMESPACE), prefix="  ")
    if demo.on_node:
        demo.console.note(f"$ kubectl get pods -n {NAMESPACE} -o wide", prefix="  ")
        demo.console.note(demo.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide"), prefix="  ")
    else:
        demo.console.note("(PODS counts ready pods: without a kubelet, the pods stay Pending; the pod runner ran them)")


# --- Workloads --------------------------------------------------------------------------------------------


def create_workload(demo: Demo, name: str, annotations: dict[str, str]) -> dict:
    """Create a Deployment whose app lists buckets on moto's S3; its pod, once the ReplicaSet made it."""
    assert demo.moto is not None
    env = {"AWS_ENDPOINT_URL_S3": demo.moto.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    demo.apply(deployment(name, annotations=annotations, env=env, command=LIST_BUCKETS))
    shown = ", ".join(f"{k}: {v}" for k, v in annotations.items()) or "no annotation"
    demo.console.note(f"Deployment {name} ({shown}), app: {' '.join(LIST_BUCKETS)}")
    demo.console.doing("waiting for kube-controller-manager to create its pod, through the webhook")

    def only_pod() -> dict | None:
        found = json.loads(demo.kubectl("get", "pods", "-n", NAMESPACE, "-l", f"app={name}", "-o", "json"))["items"]
        return found[0] if len(found) == 1 else None

    pod = wait_for(only_pod, timeout=TIMEOUT, what=f"the pod of Deployment {name}")
    demo.console.note(f"pod {pod['metadata']['name']}")
    return pod


def run_pod(demo: Demo, pod: dict, *, with_sidecar: bool) -> subprocess.CompletedProcess:
    """Run the pod with the pod runner (its sidecar first, until its startupProbe passes), then its app."""
    assert demo.plane is not None
    name = pod["metadata"]["name"]
    directory = demo.workdir / "pods" / pod["metadata"]["labels"]["app"]
    runner = PodRunner(demo.plane.bin_dir, demo.plane.kubeconfig, NAMESPACE, name, directory, timeout=TIMEOUT)
    if with_sidecar:
        demo.console.doing("starting the sidecar: CreateSession with the certificate, until credentials are written")
    with runner:
        if with_sidecar:
            show_session(demo)
        demo.console.doing(f"running the app: {' '.join(LIST_BUCKETS)}")
        result = runner.run("app")
    demo.console.note(f"$ {' '.join(LIST_BUCKETS)}", prefix="  ")
    if result.stdout.strip():
        demo.console.note(result.stdout, prefix="  ")
    if result.stderr.strip():
        demo.console.note(result.stderr, prefix="  ")
    demo.console.note(f"exit code {result.returncode}", prefix="  ")
    return result


def show_session(demo: Demo) -> None:
    assert demo.emulator is not None
    accepted = [s for s in demo.emulator.sessions() if s["status"] == CREATED]
    if accepted:
        session = accepted[-1]
        demo.console.note(f"Roles Anywhere CreateSession: certificate {session['subject']} (serial "
                          f"{session['serialNumberHex']}) -> temporary credentials {session['accessKeyId']} "
                          f"for {ROLE_NAME}, until {session['expiration']}")


def wait_ready(demo: Demo, kind: str, name: str) -> dict:
    """Wait for the Ready condition of `kind/name`; its status. On timeout, the condition's last message."""
    wait_condition(demo, kind, name, "Ready")
    return (demo.get(kind, name) or {}).get("status") or {}


def wait_condition(demo: Demo, kind: str, name: str, condition: str) -> dict:
    """Wait for condition `condition` of `kind/name` to be True; the condition. On timeout, its last message."""
    last: dict = {}

    def true() -> dict | None:
        nonlocal last
        status = (demo.get(kind, name) or {}).get("status") or {}
        last = next((c for c in status.get("conditions") or [] if c["type"] == condition), {})
        return last if last.get("status") == "True" else None

    try:
        return wait_for(true, timeout=TIMEOUT, what=f"{kind} {NAMESPACE}/{name} to be {condition}")
    except ControlPlaneError as error:
        raise DemoError(
            f"{error}; its {condition} condition: {last.get('reason', 'none')}: {last.get('message', '')}"
        ) from None


# --- Running it -------------------------------------------------------------------------------------------


def run_steps(demo: Demo, *, restart_cluster: bool) -> list[Outcome]:
    c = demo.console
    if demo.on_node:
        with c.step(f"Local cluster with cert-manager and a node ({NODE_NAME}: kubelet, containerd)"):
            start_node_cluster(demo, restart=restart_cluster)
            _fresh_workdir(demo)
        with c.step("The operator, installed by its Helm chart from the image built from the Dockerfile"):
            install_operator(demo)
    else:
        with c.step("Local control plane with cert-manager"):
            start_cluster_without_node(demo, restart=restart_cluster)
            _fresh_workdir(demo)
        with c.step("The operator, out of cluster, with its webhook on 127.0.0.1"):
            start_operator(demo)
    with c.step(f"A private CA in namespace {NAMESPACE}: self-signed root Certificate -> CA Issuer"):
        create_private_ca(demo)
    with c.step("AWS stand-in: moto with IAM authentication, S3 buckets, an S3 read-only role"):
        start_moto(demo)
    with c.step("Roles Anywhere emulator: a trust anchor for the private CA, a profile for the role"):
        start_emulator(demo)
    with c.step(f"RolesAnywhereBinding {BINDING}"):
        create_binding(demo)
    with c.step(f"An annotated Deployment ({BINDING_ANNOTATION}: {BINDING}) lists the buckets"):
        with_binding = (list_buckets_on_the_node(demo, APP_WITH_ROLE, annotated=True) if demo.on_node
                        else list_buckets_with_binding(demo))
    with c.step("The same Deployment without the annotation gets no credentials"):
        without_binding = (list_buckets_on_the_node(demo, APP_WITHOUT_ROLE, annotated=False) if demo.on_node
                           else list_buckets_without_binding(demo))
    with c.step("The binding's status" + (" and the pods" if demo.on_node else "")):
        show_bindings(demo)
    return [with_binding, without_binding]


def _fresh_workdir(demo: Demo) -> None:
    shutil.rmtree(demo.workdir, ignore_errors=True)  # the last run's files; its processes are gone
    demo.workdir.mkdir(parents=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="state directory of the local control plane (default: %(default)s, as make cluster-up)")
    parser.add_argument("--restart-cluster", action="store_true",
                        help="start a fresh control plane even when one runs in --root")
    parser.add_argument("--stop-cluster", action="store_true",
                        help="stop the control plane at the end (default: leave it running for kubectl)")
    parser.add_argument("--pod-runner", action="store_true",
                        help="no node: run the pods with the pod runner and the operator out of cluster "
                             "(the default without root)")
    return parser.parse_args(argv)


def stop_command(root: Path) -> str:
    if root == DEFAULT_ROOT.resolve():
        return "make cluster-down"
    return f".venv/bin/python -m localcluster down --root {root}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM and SIGHUP clean up as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(STEPS)
    console.line("rolesanywhere-operator demo: a pod gets AWS credentials through IAM Roles Anywhere (offline)")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    on_node = not args.pod_runner and os.geteuid() == 0
    if not args.pod_runner and not on_node:
        console.line("Not root: the local node needs root (a bridge, network namespaces, iptables chains), so the "
                     "pods run with the pod runner instead (a process emulation: no image, no kubelet; the "
                     "operator out of cluster). Run as root for the real thing.")
    demo = Demo(root=args.root.resolve(), console=console, stack=contextlib.ExitStack(), on_node=on_node)
    outcomes: list[Outcome] = []
    status = 1
    try:
        outcomes = run_steps(demo, restart_cluster=args.restart_cluster)
        status = 0 if all(o.expected for o in outcomes) else 1
    except KeyboardInterrupt:
        status = INTERRUPTED
    except (DemoError, ControlPlaneError, TimedOut, PodRunnerError, ToolsUnavailable, ChartInstallError,
            RuntimeError) as error:
        console.note(str(error), prefix="! ")
    except Exception as error:  # noqa: BLE001 - unforeseen: say so, with the traceback, then clean up
        console.note(f"{type(error).__name__}: {error}", prefix="! ")
        traceback.print_exc()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # let the clean-up finish
            signal.signal(signum, signal.SIG_IGN)
        console.line("Stopping what the demo started (" + ("the emulator, moto" if demo.on_node else
                                                             "the operator, the emulator, moto") + ")")
        try:
            demo.stack.close()
        finally:
            stop(*children_in_our_group())
        if args.stop_cluster and demo.plane is not None:
            console.line("Stopping the cluster (--stop-cluster)")
            stop_cluster(demo.root)
    report(demo, outcomes, status, cluster_left_running=not args.stop_cluster)
    return status


def report(demo: Demo, outcomes: list[Outcome], status: int, *, cluster_left_running: bool) -> None:
    console = demo.console
    console.line("")
    if status == 0:
        console.line("OK, both outcomes as expected:")
    elif status == INTERRUPTED:
        console.line("Interrupted; every process the demo started is stopped.")
    else:
        console.line(f"FAILED (logs in {demo.workdir}):")
    for outcome in outcomes:
        console.note(f"{'ok ' if outcome.expected else 'NOT'} {outcome.summary}")
    if cluster_left_running and demo.plane is not None and demo.plane.running():
        console.line("The cluster keeps running, for a look around:")
        console.note(f'export KUBECONFIG={demo.plane.kubeconfig} PATH="{demo.plane.bin_dir}:$PATH"')
        console.note(f"kubectl -n {NAMESPACE} get rab,certificates,deployments,pods")
        if demo.on_node:
            console.note(f"kubectl -n {NAMESPACE} exec -it deploy/{APP_WITH_ROLE} -c app -- sh")
            console.note("(moto and the emulator stopped with the demo: the sidecar's next refresh fails)")
        console.line(f"Stop it with: {stop_command(demo.root)}")


if __name__ == "__main__":
    sys.exit(main())
