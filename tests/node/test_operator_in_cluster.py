"""The operator as a user runs it: the Helm chart installs it from the image built from the Dockerfile, its
replicas become Ready on the node through their own probes, the API server reaches its webhook through the
Service, and a replica whose process is killed is restarted by the kubelet while the other keeps answering."""

from __future__ import annotations

import pytest
from rolesanywhere_devkit.nodepods import (
    install_operator_chart,
    kill_container,
    operator_pods,
    parse_time,
    statuses,
    wait_for_ready,
)
from rolesanywhere_devkit.operator import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator import constants as c

#: The chart's container name for the operator.
OPERATOR_CONTAINER = "operator"


@pytest.fixture(scope="module")
def installed(cluster, tmp_path_factory) -> None:
    install_operator_chart(cluster, tmp_path_factory.mktemp("helm-home"))


def webhook_answers(cluster, namespace: str) -> str | None:
    """The webhook's refusal of an opted-in pod naming a binding that does not exist (its stderr), or None
    while no replica answers. The API server calls the webhook at its Service; kube-proxy takes the call to
    a replica's pod address."""
    result = cluster.kubectl("run", "probe", "-n", namespace, "--image", cluster.image("app"),
                             f"--image-pull-policy={cluster.pull_policy}", "--restart=Never",
                             f"--labels={c.INJECT_LABEL}={c.INJECT_LABEL_VALUE}",
                             f"--annotations={c.BINDING_ANNOTATION}=missing", "--command", "--", "true", check=False)
    return result.stderr if result.returncode != 0 and "denied the request" in result.stderr else None


def test_the_operator_runs_from_the_image_and_its_webhook_answers_through_the_service(cluster, namespace, installed):
    deployment = cluster.get("deployment", OPERATOR_ACCOUNT, OPERATOR_NAMESPACE)
    assert deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"] == 2
    denied = wait_for(lambda: webhook_answers(cluster, namespace), timeout=60, what="the webhook to answer")
    assert "RolesAnywhereBinding 'missing'" in denied


def test_the_operator_pods_are_ready_through_their_own_probes(cluster, installed):
    """Ready is the kubelet's verdict from the chart's readinessProbe (the webhook's port), after the
    container started; the livenessProbe (/healthz) has not restarted anything."""
    pods = operator_pods(cluster)
    assert len(pods) == 2
    for found in pods:
        (spec,) = [x for x in found["spec"]["containers"] if x["name"] == OPERATOR_CONTAINER]
        assert spec["readinessProbe"]["tcpSocket"] and spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
        status = statuses(found)[OPERATOR_CONTAINER]
        assert status["ready"] and status["restartCount"] == 0, status
        ready = next(x for x in found["status"]["conditions"] if x["type"] == "Ready")
        started = parse_time(status["state"]["running"]["startedAt"])
        assert ready["status"] == "True" and parse_time(ready["lastTransitionTime"]) >= started


def test_a_killed_operator_is_restarted_and_the_other_replica_answers_meanwhile(cluster, namespace, installed,
                                                                               local_node):
    victim, survivor = operator_pods(cluster)
    kill_container(victim, OPERATOR_CONTAINER)

    def restarted():
        found = cluster.get("pod", victim["metadata"]["name"], OPERATOR_NAMESPACE)
        status = statuses(found)[OPERATOR_CONTAINER]
        return found if status["restartCount"] >= 1 else None

    wait_for(restarted, timeout=60, what=f"the kubelet to restart the operator in {victim['metadata']['name']}")
    # While the killed replica comes back, the webhook still answers (the Service's other endpoint).
    assert "RolesAnywhereBinding 'missing'" in wait_for(lambda: webhook_answers(cluster, namespace), timeout=30,
                                                        what="the webhook to answer")
    back = wait_for_ready(cluster, OPERATOR_NAMESPACE, victim["metadata"]["name"])
    last = statuses(back)[OPERATOR_CONTAINER]["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error", last  # SIGKILL
    assert statuses(cluster.get("pod", survivor["metadata"]["name"], OPERATOR_NAMESPACE))[OPERATOR_CONTAINER][
        "restartCount"] == 0
