"""Pods in containers on the local node (localcluster.node), for the node tests and the demo.

  NodeCluster                the shared `Cluster` helpers plus the node's images (`.image("app")`)
  pod, container, RESTRICTED manifests: a bare Pod, a container of a local image (never pulled), and the
                             container securityContext the `restricted` Pod Security profile asks for
  app_deployment, app_job    the app image as a Deployment or a Job, opted in to a binding or not
  wait_for_phase, wait_for_ready, only_pod
                             polling for a pod's phase, its containers' readiness, a workload's one pod
  install_operator_chart     `helm install` of the chart with the operator and sidecar images built from the
                             Dockerfile
  kill_container             SIGKILL every process of one container, as a crash would
  renew_certificate          ask cert-manager to renew a Certificate now (what `cmctl renew` does)

The AWS stand-ins listen on `NodeCluster.host_for_pods`: on the local node NODE_IP (its bridge's address),
the one host address pods reach; on your own cluster, an address of this machine its pods reach.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.node import NODE_IP, Image
from rolesanywhere_operator import constants as c

from rolesanywhere_devkit.cluster import Cluster
from rolesanywhere_devkit.operator import CHART, OPERATOR_ACCOUNT, OPERATOR_NAMESPACE
from rolesanywhere_devkit.processes import wait_for

#: Where pods of the local node reach processes of the host: moto, the emulator (see the module's docstring).
HOST_FOR_PODS = NODE_IP
#: The local node's images are imported into its containerd, never pulled.
LOCAL_PULL_POLICY = "Never"
#: Seconds a pod may take to reach a phase or readiness (image unpacking on a busy 2-core machine included).
POD_TIMEOUT = 120
#: Label the chart puts on the operator's pods.
OPERATOR_POD_SELECTOR = "app.kubernetes.io/name=rolesanywhere-operator"
#: A container securityContext that passes the `restricted` Pod Security Standard.
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: The app image's user (hack/images/app.Containerfile); set with its group too: the kubelet takes the
#: image's uid but not its gid (NODE.md).
APP_USER = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000}


@dataclass
class NodeCluster(Cluster):
    """The shared `Cluster` helpers, plus the node's images and where its pods reach this machine."""

    images: dict[str, Image] = field(default_factory=dict)
    host_for_pods: str = HOST_FOR_PODS
    #: LOCAL_PULL_POLICY on the local node; IfNotPresent on your own cluster (images pushed to a registry).
    pull_policy: str = LOCAL_PULL_POLICY
    #: The local node, whose host is this machine (containers' cgroups, the node's network are here).
    local: bool = True

    def image(self, name: str) -> str:
        return self.images[name].ref

    def container(self, name: str, image: str, command: list[str] | None = None, **fields) -> dict:
        """A container of the node's image `image` (operator, sidecar, app)."""
        return container(name, self.image(image), command, pull_policy=self.pull_policy, **fields)


# --- Manifests ----------------------------------------------------------------------------------------


def pod(name: str, containers: list[dict], *, labels: dict | None = None, annotations: dict | None = None,
        **spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": containers, "terminationGracePeriodSeconds": 1, **spec},
    }


def container(name: str, image: str, command: list[str] | None = None, *, pull_policy: str = LOCAL_PULL_POLICY,
              **fields) -> dict:
    return {"name": name, "image": image, "imagePullPolicy": pull_policy, **({"command": command} if command else {}),
            **fields}


def app_container(cluster: NodeCluster, command: list[str], env: dict[str, str] | None = None) -> dict:
    """The app image as a non-root, `restricted` container running `command`."""
    return cluster.container("app", "app", command, securityContext=RESTRICTED,
                             env=[{"name": k, "value": v} for k, v in (env or {}).items()])


def opt_in(binding: str | None) -> tuple[dict, dict]:
    """The pod labels and annotations that ask for `binding`'s credentials (none for None)."""
    if binding is None:
        return {}, {}
    return {c.INJECT_LABEL: c.INJECT_LABEL_VALUE}, {c.BINDING_ANNOTATION: binding}


def app_deployment(cluster: NodeCluster, name: str, *, binding: str | None, command: list[str],
                   env: dict[str, str] | None = None) -> dict:
    """A Deployment of the app image, annotated with `binding` (the operator opts its template in), with
    no fsGroup: the app reads the credentials through the supplemental group the webhook adds."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {c.BINDING_ANNOTATION: binding} if binding else {}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [app_container(cluster, command, env)], "securityContext": APP_USER,
                         "terminationGracePeriodSeconds": 1},
            },
        },
    }


def app_job(cluster: NodeCluster, name: str, *, binding: str, command: list[str],
            env: dict[str, str] | None = None) -> dict:
    """A Job of the app image whose template opts in to `binding` (a Job template carries both itself)."""
    labels, annotations = opt_in(binding)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": name, **labels}, "annotations": annotations},
                "spec": {"containers": [app_container(cluster, command, env)], "securityContext": APP_USER,
                         "restartPolicy": "Never", "terminationGracePeriodSeconds": 1},
            },
        },
    }


# --- Waiting for pods ---------------------------------------------------------------------------------


def statuses(found: dict) -> dict[str, dict]:
    """Container name -> its status, init containers (the native sidecar) included."""
    status = found.get("status") or {}
    return {s["name"]: s for s in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])}


def phase(cluster: Cluster, namespace: str, name: str, wanted: str) -> dict | None:
    found = cluster.get("pod", name, namespace)
    if found["status"].get("phase") == "Failed" and wanted != "Failed":
        raise AssertionError(f"pod {name} failed: {json.dumps(found['status'], indent=2)}")
    return found if found["status"].get("phase") == wanted else None


def wait_for_phase(cluster: Cluster, namespace: str, name: str, wanted: str, *, timeout: float = POD_TIMEOUT) -> dict:
    return wait_for(lambda: phase(cluster, namespace, name, wanted), timeout=timeout, interval=0.5,
                    what=f"pod {namespace}/{name} to be {wanted} (events: kubectl get events -n {namespace})")


def wait_for_ready(cluster: Cluster, namespace: str, name: str, *, timeout: float = POD_TIMEOUT) -> dict:
    """The pod, once Running with every container (the native sidecar included) ready."""

    def ready() -> dict | None:
        found = phase(cluster, namespace, name, "Running")
        if found is None:
            return None
        each = statuses(found)
        return found if each and all(s.get("ready") for s in each.values()) else None

    return wait_for(ready, timeout=timeout, interval=0.5,
                    what=f"every container of pod {namespace}/{name} to be ready (kubectl get events -n {namespace})")


def only_pod(cluster: Cluster, namespace: str, selector: str, *, timeout: float = POD_TIMEOUT) -> dict:
    def one() -> dict | None:
        found = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)
        live = [p for p in found["items"] if not p["metadata"].get("deletionTimestamp")]
        return live[0] if len(live) == 1 else None

    return wait_for(one, timeout=timeout, what=f"one pod {selector} in {namespace}")


def logs(cluster: Cluster, namespace: str, name: str, container_name: str) -> str:
    return cluster.kubectl("logs", "-n", namespace, name, "-c", container_name).stdout


def exec_in(cluster: Cluster, namespace: str, name: str, container_name: str, *argv: str,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run `argv` in a running container (kubectl exec, through the kubelet)."""
    return cluster.kubectl("exec", "-n", namespace, name, "-c", container_name, "--", *argv, check=check)


def parse_time(value: str) -> dt.datetime:
    """A Kubernetes (or emulator) timestamp, whole seconds, UTC."""
    return dt.datetime.fromisoformat(value).replace(microsecond=0)


# --- The operator, as the chart installs it -------------------------------------------------------------


class ChartInstallError(RuntimeError):
    """`helm install` failed; the message holds helm's error, the operator's pods and their log tails."""


def install_operator_chart(cluster: NodeCluster, home: Path, *, values: dict[str, str] | None = None,
                           timeout: int = 240) -> None:
    """`helm upgrade --install` of the chart as a user runs it: release OPERATOR_ACCOUNT in OPERATOR_NAMESPACE
    (the names the dev kit's grant_secret_read binds), the operator and sidecar images built from the
    Dockerfile (the webhook injects the sidecar's), `--wait` until its replicas are Ready. `values`: more
    `--set` pairs.

    A release an interrupted helm left pending (Ctrl-C during an install) blocks every later install
    ("another operation is in progress"): it is uninstalled first."""
    repository, tag = cluster.image("operator").rsplit(":", 1)
    sidecar_repository, sidecar_tag = cluster.image("sidecar").rsplit(":", 1)
    settings = {"image.repository": repository, "image.tag": tag, "image.pullPolicy": cluster.pull_policy,
                "sidecar.image.repository": sidecar_repository, "sidecar.image.tag": sidecar_tag, **(values or {})}
    env = {"KUBECONFIG": str(cluster.kubeconfig), "HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def helm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(cluster.bin_dir / "helm"), *args, "-n", OPERATOR_NAMESPACE], env=env,
                              capture_output=True, text=True, check=False)

    status = helm("status", OPERATOR_ACCOUNT, "-o", "json")
    if status.returncode == 0 and json.loads(status.stdout)["info"]["status"].startswith("pending"):
        helm("uninstall", OPERATOR_ACCOUNT, "--wait")
    result = helm("upgrade", "--install", OPERATOR_ACCOUNT, str(CHART), "--create-namespace",
                  *(f"--set={k}={v}" for k, v in settings.items()), "--wait", f"--timeout={timeout}s")
    if result.returncode != 0:
        pods = cluster.kubectl("get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "wide", check=False).stdout
        tail = cluster.kubectl("logs", "-n", OPERATOR_NAMESPACE, "-l", OPERATOR_POD_SELECTOR, "--tail=20",
                               check=False).stdout
        raise ChartInstallError(f"helm install failed:\n{result.stderr}\n{pods}\n{tail}")


def operator_pods(cluster: Cluster) -> list[dict]:
    found = cluster.kubectl("get", "pods", "-n", OPERATOR_NAMESPACE, "-l", OPERATOR_POD_SELECTOR, "-o", "json")
    return [p for p in json.loads(found.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


# --- Acting on the node ---------------------------------------------------------------------------------


def container_processes(found: dict, container_name: str) -> list[int]:
    """Host pids of one running container's processes, from its cgroup (cgroups v1, the kubelet's
    cgroupfs layout: kubepods/[qos/]pod<uid>/<container id>)."""
    container_id = statuses(found)[container_name]["containerID"].split("://", 1)[1]
    pids: set[int] = set()
    for procs in Path("/sys/fs/cgroup/pids/kubepods").rglob(f"{container_id}/cgroup.procs"):
        pids.update(int(p) for p in procs.read_text().split())
    return sorted(pids)


def kill_container(found: dict, container_name: str) -> list[int]:
    """SIGKILL every process of a container, as a crash (or the OOM killer) would; the pids killed."""
    pids = container_processes(found, container_name)
    if not pids:
        raise AssertionError(f"no process of container {container_name} of pod {found['metadata']['name']} found")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def renew_certificate(cluster: Cluster, namespace: str, name: str) -> None:
    """Ask cert-manager to renew Certificate `name` now, as `cmctl renew` does: its Issuing condition set
    True (reason ManuallyTriggered) on the status, the other conditions kept."""
    found = cluster.get("certificate", name, namespace)
    now = dt.datetime.now(dt.UTC).strftime(c.TIME_FORMAT)
    conditions = [cond for cond in (found.get("status") or {}).get("conditions") or [] if cond["type"] != "Issuing"]
    conditions.append({"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "lastTransitionTime": now,
                       "message": "Certificate re-issuance manually triggered",
                       "observedGeneration": found["metadata"]["generation"]})
    cluster.kubectl("patch", "certificate", name, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"conditions": conditions}}))
