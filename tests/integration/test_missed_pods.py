"""Opted-in pods the webhook never saw: with no operator at all (so no webhook configuration), a
Deployment's pod and a bare pod are created without the sidecar; once the operator runs, the
Deployment's pod is deleted and comes back injected, and the bare pod is reported. A Deployment annotated
while no operator ran (its template never got the annotation) is reported, not patched, and
`kubectl rollout restart` injects it."""

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
    install_crd,
    pods,
)
from rolesanywhere_devkit.processes import wait_for

TIMEOUT = 60
OPTED_IN = {"rolesanywhere.dev/inject": "true"}
NAMES_BINDING = {"rolesanywhere.dev/binding": "s3-reader"}


def events_for(cluster, namespace: str, reason: str) -> list[str]:
    listed = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e["message"] for e in listed if e.get("reason") == reason]


def test_a_missed_pod_is_recreated_injected_and_a_bare_one_reported(cluster, namespace, tmp_path):
    install_crd(cluster)
    ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
    cluster.apply(binding("s3-reader", **EXAMPLE_ARNS), namespace)
    web = deployment("web", template_annotations=NAMES_BINDING)
    web["spec"]["template"]["metadata"]["labels"].update(OPTED_IN)
    cluster.apply(web, namespace)
    bare = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bare", "labels": OPTED_IN, "annotations": NAMES_BINDING},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}}  # fmt: skip
    cluster.apply(bare, namespace)
    cluster.apply(deployment("late", annotations=NAMES_BINDING), namespace)
    (first,) = wait_for(lambda: pods(cluster, namespace, "app=web"), timeout=TIMEOUT, what="the Deployment's pod")
    assert not first["spec"].get("initContainers"), "no webhook ran, so no sidecar"
    bare_uid = cluster.get("pod", "bare", namespace)["metadata"]["uid"]

    operator = OperatorProcess(cluster, tmp_path / "operator").start()
    try:
        injected = wait_for(lambda: pods(cluster, namespace, "app=web,rolesanywhere.dev/injected-binding=s3-reader"),
                            timeout=TIMEOUT, what="the Deployment's pod created again, injected")
        assert injected[0]["metadata"]["uid"] != first["metadata"]["uid"]
        assert injected[0]["spec"]["initContainers"][0]["name"] == "rolesanywhere-sidecar"

        def reported():
            status = binding_status(cluster, namespace, "s3-reader")
            return status if (status.get("pods") or {}).get("missedPods") == ["bare"] else None

        status = wait_for(reported, timeout=TIMEOUT, what="the bare pod counted as missed")
        assert status["pods"]["missed"] == 1 and condition(status, "Ready")["status"] == "True"
        # Still the same pod: no controller would create it again, so it is only reported.
        assert cluster.get("pod", "bare", namespace)["metadata"]["uid"] == bare_uid
        assert any(first["metadata"]["name"] in m for m in events_for(cluster, namespace, "RecreatingPod"))
        assert any("pod bare opted in" in m for m in events_for(cluster, namespace, "PodNotInjected"))

        restart = f"kubectl rollout restart deployment/late -n {namespace}"
        wait_for(lambda: any(restart in m for m in events_for(cluster, namespace, "TemplateNotInStep")),
                 timeout=TIMEOUT, what="the workload the webhook missed reported with the command that fixes it")
        template = cluster.get("deployment", "late", namespace)["spec"]["template"]["metadata"]
        assert "rolesanywhere.dev/binding" not in (template.get("annotations") or {}), "reported, not patched"
        cluster.kubectl("rollout", "restart", "deployment/late", "-n", namespace)
        wait_for(lambda: pods(cluster, namespace, "app=late,rolesanywhere.dev/injected-binding=s3-reader"),
                 timeout=TIMEOUT, what="the restarted Deployment's pod, injected")
    finally:
        operator.stop()
