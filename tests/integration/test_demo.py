"""`make demo --pod-runner` (hack/demo.py without a node, as it runs without root) from start to end, on a
control plane of its own in a temporary --root; tests/node/test_demo_on_node.py runs the default, on the node.

It runs twice (the second run reuses the control plane and starts the demo namespace afresh), then is
interrupted twice while the pod's sidecar runs: every process it started must be gone after each run.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from localcluster.controlplane import ControlPlane
from rolesanywhere_devkit import demo_run
from rolesanywhere_devkit.demo_run import DemoRun

RUN_TIMEOUT = 240
POD_RUNNER = "--pod-runner"
pytestmark = pytest.mark.podrunner("tests/node/test_demo_on_node.py")
BUCKETS = ("rolesanywhere-demo-invoices", "rolesanywhere-demo-reports")
#: How a line of `aws s3 ls` output starts: the bucket's creation time (the bucket name follows).
LISTED_AT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
CREDENTIALS_ERROR = "Unable to locate credentials. You can configure credentials"
#: Printed while the sidecar of the annotated pod runs, with the operator, moto and the emulator.
WHILE_THE_SIDECAR_RUNS = "Roles Anywhere CreateSession: certificate"


def run_demo(root: Path, *args: str, interrupt=None) -> DemoRun:
    try:
        return demo_run.run_demo(root, POD_RUNNER, *args, timeout=RUN_TIMEOUT, interrupt=interrupt)
    except demo_run.DemoTimedOut as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    yield root
    ControlPlane(root, Path("/nonexistent")).stop()


def assert_both_outcomes(run: DemoRun, root: Path) -> None:
    assert run.returncode == 0, run.output
    for bucket in BUCKETS:
        assert re.search(LISTED_AT + re.escape(bucket) + "$", run.output, re.MULTILINE), run.output
    assert CREDENTIALS_ERROR in run.output, run.output
    # READY and VERIFIED: the certificate is valid, and Roles Anywhere accepted it (a profile with AWS's defaults).
    assert re.search(r"^\[[^]]*\]\s+s3-reader\s+True\s+True\s+arn:aws:iam::\d+:role/s3-read-only", run.output,
                     re.MULTILINE), \
        run.output  # kubectl get rab
    assert f"export KUBECONFIG={root / 'kubeconfig'}" in run.output
    assert run.leftovers == []


def test_the_demo_lists_buckets_with_the_binding_fails_without_it_and_runs_again(demo_root, tools_bin):
    plane = ControlPlane(demo_root, tools_bin)

    first = run_demo(demo_root)
    assert_both_outcomes(first, demo_root)
    assert "starting etcd, kube-apiserver" in first.output
    assert plane.running(), "the control plane should keep running after the demo, for kubectl"

    second = run_demo(demo_root, "--stop-cluster")
    assert_both_outcomes(second, demo_root)
    assert "reusing the control plane" in second.output
    assert "deleting namespace rolesanywhere-demo left by an earlier run" in second.output
    assert not plane.running(), "--stop-cluster should stop the control plane"


@pytest.mark.parametrize(
    "signum, whole_group",
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-in-a-terminal", "sigterm-to-the-demo-alone"],
)
def test_an_interrupted_demo_stops_every_process_it_started(demo_root, tools_bin, signum, whole_group):
    run = run_demo(demo_root, interrupt=(WHILE_THE_SIDECAR_RUNS, signum, whole_group))

    assert run.returncode == 130, run.output
    assert "Interrupted; every process the demo started is stopped." in run.output
    assert run.leftovers == [], run.output
    # The operator's webhook configuration left with it: nothing refuses pods in the cluster it leaves running.
    plane = ControlPlane(demo_root, tools_bin)
    found = plane.kubectl("get", "mutatingwebhookconfiguration", "rolesanywhere-demo", check=False)
    assert found.returncode != 0 and "NotFound" in found.stderr, found.stdout + found.stderr
