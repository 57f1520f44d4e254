"""The operator as a user runs it: the Helm chart installs it from the image built from the Dockerfile,
its replicas become Ready on the node, and the API server reaches its webhook through the Service."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator import constants as c

CERT_MANAGER = True  # the chart's webhook certificate comes from cert-manager
CHART = Path(__file__).resolve().parents[2] / "charts" / "rolesanywhere-operator"
NAMESPACE = "rolesanywhere-system"


@pytest.fixture(scope="module")
def installed(cluster, tmp_path_factory) -> None:
    home = tmp_path_factory.mktemp("helm-home")
    repository, tag = cluster.image("operator").rsplit(":", 1)
    env = {"KUBECONFIG": str(cluster.kubeconfig), "HOME": str(home), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [str(cluster.bin_dir / "helm"), "install", "rao", str(CHART), "-n", NAMESPACE, "--create-namespace",
         f"--set=image.repository={repository}", f"--set=image.tag={tag}", "--set=image.pullPolicy=Never",
         "--wait", "--timeout=180s"],
        env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pods = cluster.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
        logs = cluster.kubectl("logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=rolesanywhere-operator",
                               "--tail=20", check=False).stdout
        raise AssertionError(f"helm install failed:\n{result.stderr}\n{pods}\n{logs}")


def test_the_operator_runs_from_the_image_and_its_webhook_answers_through_the_service(cluster, namespace, installed):
    deployment = cluster.get("deployment", "rao", NAMESPACE)
    assert deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"]
    # An opted-in pod naming a binding that does not exist: the API server calls the webhook at its Service
    # (kube-proxy takes it to a replica's pod address), and the webhook's answer comes back.
    denied = wait_for(
        lambda: (r := cluster.kubectl("run", "probe", "-n", namespace, "--image", cluster.image("app"),
                                      "--image-pull-policy=Never", "--restart=Never",
                                      f"--labels={c.INJECT_LABEL}={c.INJECT_LABEL_VALUE}",
                                      f"--annotations={c.BINDING_ANNOTATION}=missing", "--command", "--", "true",
                                      check=False)).returncode != 0 and "denied the request" in r.stderr and r,
        timeout=60, what="the webhook to answer")
    assert "RolesAnywhereBinding 'missing'" in denied.stderr
