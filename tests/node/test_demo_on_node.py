"""`make demo` as it runs by default (as root): on the node, with the chart-installed operator, in a
temporary --root. It succeeds, leaving the cluster up with 2/2 pods on the node and `kubectl exec` working;
Ctrl-C during its `helm install` stops it cleanly; the next run reuses the cluster (and the release the
interrupted helm left), and --stop-cluster then leaves nothing of the node on the machine."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from localcluster.controlplane import ControlPlane
from localcluster.node import BRIDGE, NODE_CLAIM, NODE_NAME, stop_cluster
from rolesanywhere_devkit import demo_run
from rolesanywhere_devkit.demo_run import INTERRUPTED, DemoRun

RUN_TIMEOUT = 600
BUCKETS = ("rolesanywhere-demo-invoices", "rolesanywhere-demo-reports")
NAMESPACE = "rolesanywhere-demo"
CREDENTIALS_ERROR = "Unable to locate credentials"
#: How a line of `aws s3 ls` output starts: the bucket's creation time (the bucket name follows).
LISTED_AT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


@pytest.fixture(scope="module")
def demo_root(node_parts, exclusive_node, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-on-node")
    yield root
    stop_cluster(root)


def run_demo(root, *args, interrupt=None) -> DemoRun:
    try:
        return demo_run.run_demo(root, *args, timeout=RUN_TIMEOUT, interrupt=interrupt)
    except demo_run.DemoTimedOut as error:
        pytest.fail(str(error))


def assert_both_outcomes_on_the_node(run: DemoRun, root) -> None:
    assert run.returncode == 0, run.output
    for bucket in BUCKETS:
        assert re.search(r"\]\s+" + LISTED_AT + re.escape(bucket) + "$", run.output, re.MULTILINE), run.output
    assert CREDENTIALS_ERROR in run.output, run.output
    # kubectl get rab: READY and VERIFIED (the operator, in its pod, called the emulator through the node).
    assert re.search(r"s3-reader\s+True\s+True\s+arn:aws:iam::\d+:role/s3-read-only", run.output), run.output
    # kubectl get pods -o wide: the annotated app 2/2 on the node, the other 1/1.
    assert re.search(rf"s3-lister-[a-z0-9]+-[a-z0-9]+\s+2/2\s+Running\s+0\s+\S+\s+10\.244\.0\.\d+\s+{NODE_NAME}",
                     run.output), run.output
    assert re.search(rf"s3-lister-no-binding-\S+\s+1/1\s+Running\s+0\s+\S+\s+\S+\s+{NODE_NAME}", run.output), \
        run.output
    assert "assumed-role/s3-read-only/" in run.output  # `kubectl exec ... aws sts get-caller-identity`
    assert f"export KUBECONFIG={root / 'kubeconfig'}" in run.output
    assert run.leftovers == []


def test_the_demo_runs_on_the_node_and_leaves_the_cluster_up(demo_root, node_parts):
    bin_dir, _ = node_parts
    run = run_demo(demo_root)
    assert_both_outcomes_on_the_node(run, demo_root)
    assert "helm install rolesanywhere-system" in run.output
    plane = ControlPlane(demo_root, bin_dir)
    assert plane.running(), "the cluster should keep running after the demo, for kubectl"
    # `kubectl exec` into the app container works after the demo, from anywhere.
    exec_id = plane.kubectl("exec", "-n", NAMESPACE, "deploy/s3-lister", "-c", "app", "--", "id", "-u").stdout
    assert exec_id.strip() == "1000"


def test_ctrl_c_during_helm_install_stops_the_demo_and_the_next_run_recovers(demo_root, node_parts):
    interrupted = run_demo(demo_root, interrupt=("helm install rolesanywhere-system", signal.SIGINT, True))
    assert interrupted.returncode == INTERRUPTED, interrupted.output
    assert "Interrupted; every process the demo started is stopped." in interrupted.output
    assert interrupted.leftovers == [], interrupted.output

    again = run_demo(demo_root, "--stop-cluster")
    assert_both_outcomes_on_the_node(again, demo_root)
    assert "reusing the cluster and node" in again.output
    assert "deleting namespace rolesanywhere-demo left by an earlier run" in again.output
    bin_dir, _ = node_parts
    assert not ControlPlane(demo_root, bin_dir).running()
    assert not NODE_CLAIM.exists() and not (demo_root / "node").exists()
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
