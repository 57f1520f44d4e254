"""A node killed with its pods running (a killed `make cluster-up` or pytest) does not break the next
start in the same directory, and `down` leaves nothing of it on the machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from localcluster.node import BRIDGE, NODE_CLAIM, start_cluster, stop_cluster
from rolesanywhere_devkit.processes import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def sleeper(image: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "sleep", "image": image, "imagePullPolicy": "Never",
                            "command": ["python3", "-c", "import time; time.sleep(3600)"],
                            "volumeMounts": [{"name": "memory", "mountPath": "/m"}]}],
            "volumes": [{"name": "memory", "emptyDir": {"medium": "Memory"}}],
        },
    })


def run_sleeper(plane, image: str) -> None:
    plane.kubectl("apply", "-n", "default", "-f", "-", input=sleeper(image))
    wait_for(lambda: plane.kubectl("get", "pod", "sleeper", "-n", "default", "-o", "jsonpath={.status.phase}",
                                   check=False).stdout == "Running", timeout=90, what="pod sleeper to run")


def leftovers(root: Path) -> dict[str, object]:
    """What a node leaves on the machine while it runs; all empty once it is down."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if line.split()[4].startswith(str(root))]
    chains = []
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listing = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True, check=False).stdout
            chains += [line for line in listing.splitlines()
                       if line.startswith("-N ") and line.split()[1].startswith(("KUBE-", "CNI-", "RAONODE-"))]
    return {
        "mounts": mounts,
        "bridge": Path(f"/sys/class/net/{BRIDGE}").exists(),
        "chains": chains,
        "pod cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods")],
        "node directory": (root / "node").exists(),
    }


def test_a_killed_node_does_not_break_the_next_start(node_parts, exclusive_node):
    bin_dir, images = node_parts
    root = REPO_ROOT / ".run" / "test-node-restart"
    plane, node = start_cluster(root, bin_dir, images, cert_manager_crds=None)
    run_sleeper(plane, images["app"].ref)
    running = leftovers(root)
    assert running["mounts"] and running["bridge"] and running["chains"] and running["pod cgroups"]

    # Killed: no down, every process gone at once, the state files left behind.
    pids = [*json.loads(node.state_file.read_text())["pids"].values(),
            *json.loads(plane.state_file.read_text())["pids"].values()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    try:
        plane, node = start_cluster(root, bin_dir, images, cert_manager_crds=None)
        run_sleeper(plane, images["app"].ref)
    finally:
        stop_cluster(root)
    assert leftovers(root) == {"mounts": [], "bridge": False, "chains": [], "pod cgroups": [],
                               "node directory": False}
    assert not NODE_CLAIM.exists()
