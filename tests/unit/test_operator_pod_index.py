"""The pod index the status is counted from: which binding a pod counts for, and when a refresh is due."""

from __future__ import annotations

from rolesanywhere_operator.pod_index import PodIndex
from rolesanywhere_operator.status import count_pods


def pod(uid: str, *, injected: str | None = "s3-reader", named: str = "s3-reader", ready: bool = False,
        phase: str = "Running") -> dict:
    labels = {"rolesanywhere.dev/inject": "true", "app": "web"}
    if injected:
        labels["rolesanywhere.dev/injected-binding"] = injected
    return {
        "metadata": {"name": f"web-{uid}", "uid": uid, "labels": labels,
                     "annotations": {"rolesanywhere.dev/binding": named, "other": "x" * 1000},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": True}]},
        "spec": {"containers": [{"name": "app", "image": "app:1"}] * 5},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                                  {"type": "PodScheduled", "status": "True"}]},
    }  # fmt: skip


def test_injected_and_missed_pods_are_kept_slim_under_their_binding():
    index = PodIndex()
    assert index.update(None, "shop", pod("1", ready=True)) == {("shop", "s3-reader")}
    assert index.update("ADDED", "shop", pod("2", injected=None)) == {("shop", "s3-reader")}
    injected, missed = index.pods("shop", "s3-reader")
    assert [p["metadata"]["name"] for p in injected] == ["web-1"] and [p["metadata"]["name"] for p in missed] == ["web-2"]
    assert count_pods(injected) == {"total": 1, "ready": 1, "summary": "1/1"}
    kept = injected[0]
    assert "spec" not in kept and "other" not in kept["metadata"]["annotations"]
    assert kept["metadata"]["ownerReferences"] == [{"kind": "ReplicaSet", "controller": True}]
    assert index.pods("shop", "other") == ([], [])


def test_only_changes_the_status_counts_make_a_refresh_due():
    index = PodIndex()
    index.update(None, "shop", pod("1"))
    noise = pod("1")
    noise["status"]["conditions"][1]["status"] = "False"  # not something the status counts
    assert index.update("MODIFIED", "shop", noise) == set()
    assert index.update("MODIFIED", "shop", pod("1", ready=True)) == {("shop", "s3-reader")}
    assert index.update("DELETED", "shop", pod("1", ready=True)) == {("shop", "s3-reader")}
    assert index.pods("shop", "s3-reader") == ([], [])


def test_a_pod_that_changes_binding_moves_and_both_are_refreshed():
    index = PodIndex()
    index.update(None, "shop", pod("1", injected=None, named="a"))
    assert index.update("MODIFIED", "shop", pod("1", injected=None, named="b")) == {("shop", "a"), ("shop", "b")}
    assert index.pods("shop", "a") == ([], []) and len(index.pods("shop", "b")[1]) == 1
