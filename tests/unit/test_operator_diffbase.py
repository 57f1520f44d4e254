"""kopf keeps its last-handled state (a copy of the object, for create/update diffs) for bindings only."""

from __future__ import annotations

import kopf
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.handlers import BindingsDiffBase

STORAGE = BindingsDiffBase(prefix=c.GROUP, key=c.LAST_HANDLED_ANNOTATION.removeprefix(f"{c.GROUP}/"))


def test_a_binding_keeps_its_spec_as_the_state_its_changes_are_diffed_against():
    binding = {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": {"name": "s3", "labels": {"team": "a"}},
               "spec": {"roleArn": "arn:aws:iam::111122223333:role/r"}, "status": {"conditions": []}}
    essence = STORAGE.build(body=kopf.Body(binding))
    assert essence["spec"] == binding["spec"] and "status" not in essence


def test_a_pod_whose_handlers_only_see_events_is_not_copied():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [{"name": "a"}]}}
    assert STORAGE.build(body=kopf.Body(pod)) == {}
