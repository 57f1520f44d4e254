"""Opted-in pods running without the sidecar: which are the binding's, which are recreated, what is said."""

from __future__ import annotations

import pytest
from rolesanywhere_operator.missed import plan, status_fields
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_operator.status import Event


def binding(**spec):
    return parse_binding({
        "metadata": {"name": "s3-reader", "namespace": "shop"},
        "spec": {
            "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/"
                              "11111111-2222-3333-4444-555555555555",
            "profileArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000",
            "roleArn": "arn:aws:iam::111122223333:role/s3-reader",
            "certificate": {"issuerRef": {"name": "ca"}}, **spec,
        },
    })  # fmt: skip


def pod(name: str, *, binding_name: str = "s3-reader", owner: str | None = "ReplicaSet", phase: str = "Running",
        deleting: bool = False) -> dict:
    metadata: dict = {"name": name, "annotations": {"rolesanywhere.dev/binding": binding_name}}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner, "name": "web-1", "controller": True}]
    if deleting:
        metadata["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase}}


def test_a_controlled_pod_is_recreated_and_a_bare_one_reported():
    pods = [pod("web-b"), pod("bare", owner=None), pod("other", binding_name="x"), pod("done", phase="Succeeded"),
            pod("going", deleting=True)]
    missed = plan(binding(), pods, None, ready=True)
    assert missed.names == ("bare", "web-b")
    assert missed.recreate == ("web-b",)
    assert [(e.type, e.reason) for e in missed.events] == [("Normal", "RecreatingPod"), ("Warning", "PodNotInjected")]
    assert "deleted so its ReplicaSet creates it again, injected" in missed.events[0].message
    assert "pod bare opted in" in missed.events[1].message and "no controller owns it" in missed.events[1].message
    assert status_fields(missed) == {"missed": 2, "missedPods": ["bare", "web-b"]}


def test_a_reported_pod_is_reported_once():
    previous = {"pods": {"missed": 1, "missedPods": ["bare"]}}
    assert plan(binding(), [pod("bare", owner=None)], previous, ready=True).events == ()


@pytest.mark.parametrize(
    "spec, ready, why",
    [({"missedPods": "Report"}, True, "spec.missedPods is Report"),
     ({}, False, "the binding is not Ready")],
)
def test_nothing_is_deleted_when_the_binding_says_report_or_is_not_ready(spec, ready, why):
    missed = plan(binding(**spec), [pod("web-b")], None, ready=ready)
    assert missed.recreate == ()
    (event,) = missed.events
    assert event == Event("Warning", "PodNotInjected", event.message) and why in event.message


def test_no_missed_pod_is_a_zero_count():
    assert status_fields(plan(binding(), [], None, ready=True)) == {"missed": 0}
