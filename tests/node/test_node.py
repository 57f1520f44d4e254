"""Pods in real containers on the local node: the project's images, a native sidecar next to a non-root app,
`kubectl logs` and `kubectl exec` through the kubelet, and the API server through kube-proxy."""

from __future__ import annotations

import ipaddress
import json

from localcluster.controlplane import SERVICE_CIDR
from localcluster.node import NODE_IP, NODE_NAME, POD_CIDR
from rolesanywhere_devkit.nodepods import POD_TIMEOUT, RESTRICTED, phase, pod, wait_for_phase
from rolesanywhere_devkit.processes import wait_for


def test_the_sidecar_image_runs_the_sidecar_command_to_completion(cluster, namespace):
    cluster.apply(pod("help", [cluster.container("sidecar", "sidecar", securityContext=RESTRICTED)],
                      restartPolicy="Never", securityContext={"runAsNonRoot": True}), namespace)
    done = wait_for_phase(cluster, namespace, "help", "Succeeded")
    assert done["spec"]["nodeName"] == (NODE_NAME if cluster.local else done["spec"]["nodeName"])  # kube-scheduler
    (status,) = done["status"]["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 0
    logs = cluster.kubectl("logs", "-n", namespace, "help").stdout
    assert "usage: rolesanywhere-sidecar" in logs


# What the sidecar image holds: the sidecar's command and its dependencies, none of the operator's packages.
CONTENT_SCRIPT = r"""
import importlib.util, sys
import rolesanywhere_sidecar.serve
for name in ("cryptography", "httpx", "kopf", "kubernetes", "aiohttp", "yaml", "click"):
    print(name, "present" if importlib.util.find_spec(name) else "absent")
print("loaded", " ".join(sorted(n for n in sys.modules if n.startswith(("kopf", "kubernetes", "aiohttp", "click")))))
"""


def test_the_sidecar_image_holds_no_operator_packages(cluster, namespace):
    cluster.apply(pod("content", [cluster.container("sidecar", "sidecar", ["python3", "-c", CONTENT_SCRIPT],
                                                    securityContext=RESTRICTED)],
                      restartPolicy="Never", securityContext={"runAsNonRoot": True}), namespace)
    wait_for_phase(cluster, namespace, "content", "Succeeded")
    lines = cluster.kubectl("logs", "-n", namespace, "content").stdout.splitlines()
    assert lines == ["cryptography present", "httpx present", "kopf absent", "kubernetes absent", "aiohttp absent",
                     "yaml absent", "click absent", "loaded "]


# The sidecar writes a file only its group may read into a memory emptyDir and answers on the pod's loopback;
# the app, another uid in that group, reads both.
SIDECAR_SCRIPT = r"""
import http.server, os, socketserver
path = "/run/shared/credentials"
with open(path + ".tmp", "w") as f:
    f.write("from-the-sidecar\n")
os.chmod(path + ".tmp", 0o640)
os.replace(path + ".tmp", path)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"uid={os.getuid()}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
print("sidecar serving on 127.0.0.1:9911", flush=True)
socketserver.TCPServer(("127.0.0.1", 9911), Handler).serve_forever()
"""

APP_SCRIPT = r"""
import time, urllib.request
print("app read:", open("/run/shared/credentials").read().strip(), flush=True)
print("app got:", urllib.request.urlopen("http://127.0.0.1:9911/").read().decode(), flush=True)
time.sleep(3600)
"""


def test_a_native_sidecar_and_a_non_root_app_run_side_by_side(cluster, namespace):
    """2/2 with logs and exec through the kubelet; and no default route: nothing a pod sends leaves the machine."""
    shared = {"name": "shared", "mountPath": "/run/shared"}
    sidecar = cluster.container(
        "sidecar", "sidecar", ["python3", "-c", SIDECAR_SCRIPT], restartPolicy="Always",
        volumeMounts=[shared], securityContext={**RESTRICTED, "runAsUser": 65532, "runAsGroup": 65532},
        startupProbe={"exec": {"command": ["test", "-s", "/run/shared/credentials"]}, "periodSeconds": 1},
    )
    app = cluster.container("app", "app", ["python3", "-c", APP_SCRIPT], volumeMounts=[shared],
                    securityContext={**RESTRICTED, "runAsUser": 1000, "runAsGroup": 1000})
    cluster.apply(pod("side-by-side", [app], initContainers=[sidecar],
                      volumes=[{"name": "shared", "emptyDir": {"medium": "Memory"}}],
                      securityContext={"runAsNonRoot": True, "supplementalGroups": [65532]}), namespace)

    def both_ready():
        found = phase(cluster, namespace, "side-by-side", "Running")
        statuses = (found or {}).get("status", {})
        ready = [s for s in statuses.get("initContainerStatuses", []) + statuses.get("containerStatuses", [])
                 if s.get("ready")]
        return len(ready) == 2

    wait_for(both_ready, timeout=POD_TIMEOUT, interval=0.5, what="both containers of side-by-side to be ready")
    wait_for(lambda: "app got: uid=65532" in cluster.kubectl("logs", "-n", namespace, "side-by-side", "-c", "app",
                                                             check=False).stdout,
             timeout=30, what="the app's log to show the sidecar's answer")
    logs = cluster.kubectl("logs", "-n", namespace, "side-by-side", "-c", "app").stdout
    assert "app read: from-the-sidecar" in logs
    assert "serving on 127.0.0.1:9911" in cluster.kubectl("logs", "-n", namespace, "side-by-side", "-c", "sidecar").stdout
    exec_id = cluster.kubectl("exec", "-n", namespace, "side-by-side", "-c", "app", "--", "id").stdout
    assert exec_id.startswith("uid=1000") and "65532" in exec_id
    aws = cluster.kubectl("exec", "-n", namespace, "side-by-side", "-c", "app", "--", "aws", "--version")
    assert "aws-cli/" in aws.stdout + aws.stderr
    if cluster.local:  # the local node's pod network: nothing routed off the machine
        assert pod_routes(cluster, namespace, "side-by-side") == {f"{POD_CIDR} dev eth0", f"{SERVICE_CIDR} via {NODE_IP}"}


def pod_routes(cluster, namespace: str, name: str) -> set[str]:
    """The pod's IPv4 routes, read from /proc/net/route in its network namespace (the image has no `ip`)."""
    table = cluster.kubectl("exec", "-n", namespace, name, "-c", "app", "--", "cat", "/proc/net/route").stdout

    def address(hex_le: str) -> str:
        return str(ipaddress.IPv4Address(bytes.fromhex(hex_le)[::-1]))

    routes = set()
    for line in table.splitlines()[1:]:
        iface, dest, gateway, _, _, _, _, mask = line.split()[:8]
        network = ipaddress.IPv4Network(f"{address(dest)}/{address(mask)}")
        routes.add(f"{network} via {address(gateway)}" if gateway != "00000000" else f"{network} dev {iface}")
    return routes


IN_CLUSTER_SCRIPT = """
from kubernetes import client, config
config.load_incluster_config()
print("server version:", client.VersionApi().get_code().git_version)
"""


def test_a_pod_reaches_the_api_server_through_the_kubernetes_service(cluster, namespace):
    cluster.apply(pod("in-cluster", [cluster.container("client", "operator", ["python3", "-c", IN_CLUSTER_SCRIPT],
                                                       securityContext=RESTRICTED)],
                      restartPolicy="Never", securityContext={"runAsNonRoot": True}), namespace)
    wait_for_phase(cluster, namespace, "in-cluster", "Succeeded")
    logs = cluster.kubectl("logs", "-n", namespace, "in-cluster").stdout
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert f"server version: {version}" in logs
