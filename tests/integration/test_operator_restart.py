"""The operator killed mid-way and started again converges to the same state: one Certificate (not
re-issued), one sidecar per pod, status caught up with what changed while it was down."""

from __future__ import annotations

import datetime as dt
import json

from localcluster import pki
from rolesanywhere_devkit.operator import (
    EXAMPLE_ARNS,
    OperatorProcess,
    binding,
    binding_status,
    ca_issuer,
    condition,
    deployment,
    pods,
)
from rolesanywhere_devkit.processes import wait_for

TIMEOUT = 30
INJECTED = "rolesanywhere.dev/injected-binding=s3-reader"


def sidecar_count(pod: dict) -> int:
    containers = (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]
    return sum(1 for c in containers if c["name"] == "rolesanywhere-sidecar")


def ready_events(cluster, namespace: str) -> int:
    result = cluster.kubectl(
        "get", "events", "-n", namespace, "-o", "json",
        "--field-selector=involvedObject.kind=RolesAnywhereBinding,reason=Ready",
    )
    return sum(e.get("count", 1) for e in json.loads(result.stdout)["items"])


def test_a_restarted_operator_converges_without_duplicates(cluster, namespace, tmp_path):
    operator = OperatorProcess(cluster, tmp_path / "operator").start()
    try:
        ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
        cluster.apply(binding("s3-reader", **EXAMPLE_ARNS), namespace)
        cluster.apply(deployment("web", annotations={"rolesanywhere.dev/binding": "s3-reader"}), namespace)
        wait_for(lambda: condition(binding_status(cluster, namespace, "s3-reader"), "Ready").get("status") == "True",
                 timeout=TIMEOUT, what="the binding to become Ready")
        wait_for(lambda: pods(cluster, namespace, f"app=web,{INJECTED}"), timeout=TIMEOUT, what="web's pod")
        certificate_uid = cluster.get("certificate", "rolesanywhere-s3-reader", namespace)["metadata"]["uid"]

        operator.kill()
        # While it is down: the binding changes, and a workload is annotated (the workload webhook is
        # failurePolicy Ignore, so this goes through without the operator; the operator, back, reports it
        # rather than patching it, and a rollout restart goes through the webhook).
        cluster.kubectl("patch", "rab", "s3-reader", "-n", namespace, "--type=merge", "-p",
                        '{"spec": {"sessionDuration": 7200}}')
        cluster.apply(deployment("late"), namespace)
        cluster.kubectl("annotate", "deployment", "late", "-n", namespace, "rolesanywhere.dev/binding=s3-reader")
        operator.start()

        def caught_up():
            status = binding_status(cluster, namespace, "s3-reader")
            return status.get("observedGeneration") == 2 and condition(status, "Ready").get("status") == "True"

        wait_for(caught_up, timeout=TIMEOUT, what="the status to reflect the binding's generation 2")
        wait_for(lambda: "TemplateNotInStep" in cluster.kubectl(
                     "get", "events", "-n", namespace, "--field-selector=involvedObject.name=late", "-o", "json").stdout,
                 timeout=TIMEOUT, what="the late workload reported as not in step")
        cluster.kubectl("rollout", "restart", "deployment/late", "-n", namespace)
        late = wait_for(lambda: pods(cluster, namespace, f"app=late,{INJECTED}"), timeout=TIMEOUT,
                        what="the late workload's injected pod (annotation copied by the webhook at the restart)")

        certificates = json.loads(cluster.kubectl("get", "certificates", "-n", namespace, "-o", "json").stdout)
        (certificate,) = certificates["items"]
        assert certificate["metadata"]["uid"] == certificate_uid
        assert certificate["status"].get("revision") == 1, "the restart re-issued the certificate"
        for pod in pods(cluster, namespace, "app=web") + late:
            assert sidecar_count(pod) <= 1
        assert all(sidecar_count(pod) == 1 for pod in late)
        assert ready_events(cluster, namespace) == 1, "the restart reported Ready again"
    finally:
        operator.stop()


def test_a_binding_can_be_deleted_while_no_operator_runs(cluster, namespace, tmp_path):
    """No finalizer: with the operator gone (uninstalled, crashed), deleting a binding, its namespace or
    the CRD never hangs."""
    operator = OperatorProcess(cluster, tmp_path / "operator").start()
    try:
        ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
        cluster.apply(binding("s3-reader", **EXAMPLE_ARNS), namespace)
        wait_for(lambda: condition(binding_status(cluster, namespace, "s3-reader"), "Ready").get("status") == "True",
                 timeout=TIMEOUT, what="the binding to become Ready")
    finally:
        operator.stop()
    assert not cluster.get("rab", "s3-reader", namespace)["metadata"].get("finalizers")
    cluster.kubectl("delete", "rab", "s3-reader", "-n", namespace, "--timeout=20s")
    assert cluster.kubectl("get", "rab", "s3-reader", "-n", namespace, check=False).returncode != 0
