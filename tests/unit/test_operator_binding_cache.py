"""The admission cache's bookkeeping: what a watch event does to the bindings kept, and what is kept."""

from __future__ import annotations

import logging

import pytest
from rolesanywhere_operator.binding_cache import BindingCache, apply_event, slim
from rolesanywhere_operator.kube import ApiError


def body(name: str, version: str, **spec) -> dict:
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "generation": 2,
                     "resourceVersion": version, "managedFields": [{"manager": "kubectl"}],
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
        "spec": {"roleArn": "arn:aws:iam::111122223333:role/r", **spec},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip


def test_added_and_modified_bindings_are_kept_slim_and_deleted_ones_dropped():
    kept: dict = {}
    assert apply_event(kept, {"type": "ADDED", "object": body("a", "10")}) == "10"
    assert kept[("shop", "a")] == {
        "metadata": {"name": "a", "namespace": "shop", "uid": "uid-a", "generation": 2, "resourceVersion": "10"},
        "spec": {"roleArn": "arn:aws:iam::111122223333:role/r"},
    }
    apply_event(kept, {"type": "MODIFIED", "object": body("a", "11", sessionDuration=900)})
    assert kept[("shop", "a")]["spec"]["sessionDuration"] == 900
    assert apply_event(kept, {"type": "DELETED", "object": body("a", "12")}) == "12"
    assert kept == {}


def test_a_bookmark_moves_the_version_and_changes_nothing():
    kept = {("shop", "a"): slim(body("a", "10"))}
    bookmark = {"type": "BOOKMARK", "object": {"kind": "RolesAnywhereBinding", "metadata": {"resourceVersion": "99"}}}
    assert apply_event(kept, bookmark) == "99"
    assert list(kept) == [("shop", "a")]


def test_an_expired_version_is_an_api_error_410_so_the_cache_lists_again():
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version: 1 (5)"}}
    with pytest.raises(ApiError) as raised:
        apply_event({}, gone)
    assert raised.value.status == 410


def test_the_cache_names_its_bindings_only_once_filled():
    cache = BindingCache(kube=None, logger=logging.getLogger("test"))
    assert cache.keys() is None  # the resync lists them itself meanwhile
    cache.bindings = {("shop", "a"): slim(body("a", "10"))}
    cache.synced.set()
    assert cache.keys() == [("shop", "a")]
