"""Admission, every outcome: admission.admit decides, handlers.inject answers the AdmissionReview (the JSON patch)."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
from pathlib import Path

import jsonpatch
import pytest
import yaml
from rolesanywhere_operator import constants as c
from rolesanywhere_operator import handlers
from rolesanywhere_operator.admission import (
    ADMISSION_READ_TIMEOUT_SECONDS,
    FROM_API_SERVER,
    FROM_CACHE,
    Admitted,
    ReadFailed,
    Refused,
    admit,
    json_patch,
)
from rolesanywhere_operator.runtime import Runtime
from rolesanywhere_operator.settings import Settings
from rolesanywhere_operator.workloads import ReportedOnce

TESTDATA = Path(__file__).parent / "testdata" / "injection"
BINDING = yaml.safe_load((TESTDATA / "binding.yaml").read_text())
NAME, NAMESPACE = BINDING["metadata"]["name"], BINDING["metadata"]["namespace"]


def pod(**annotations: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": NAMESPACE, "labels": {c.INJECT_LABEL: c.INJECT_LABEL_VALUE},
                     "annotations": {c.BINDING_ANNOTATION: NAME, **annotations}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


class Api:
    """The API server as admission sees it: bindings by (namespace, name), or a failure to raise."""

    def __init__(self, bindings: dict | None = None, failure: Exception | None = None) -> None:
        self.bindings, self.failure, self.reads = bindings or {}, failure, []

    async def read(self, namespace: str, name: str, timeout: float) -> dict | None:
        self.reads.append((namespace, name, timeout))
        if self.failure is not None:
            raise self.failure
        return self.bindings.get((namespace, name))


def run_admit(submitted: dict, *, cache: dict | None = None, api: Api | None = None,
              namespace: str = NAMESPACE, excluded: tuple[str, ...] = ("kube-system",)) -> Admitted:
    cache = cache or {}
    return asyncio.run(admit(submitted, namespace, settings=Settings(), excluded_namespaces=excluded,
                             cached=lambda ns, name: cache.get((ns, name)), read=(api or Api()).read))


def test_a_pod_without_the_binding_annotation_is_admitted_unchanged():
    submitted = pod()
    del submitted["metadata"]["annotations"][c.BINDING_ANNOTATION]
    assert run_admit(submitted) == Admitted()


def test_a_pod_in_an_excluded_namespace_is_admitted_unchanged_without_reading_any_binding():
    api = Api()
    assert run_admit(pod(), namespace="kube-system", api=api).pod is None
    assert api.reads == []


def test_an_already_injected_pod_is_admitted_unchanged():
    assert run_admit(pod(**{c.INJECTED_ANNOTATION: NAME})).pod is None


def test_a_binding_annotation_that_is_no_name_is_refused_with_400():
    with pytest.raises(Refused, match=c.BINDING_ANNOTATION) as refused:
        run_admit(pod(**{c.BINDING_ANNOTATION: "../other/s3"}))
    assert refused.value.code == 400


def test_a_cached_binding_is_injected_without_asking_the_api_server():
    api = Api()
    admitted = run_admit(pod(), cache={(NAMESPACE, NAME): BINDING}, api=api)
    assert (admitted.binding, admitted.source, api.reads) == (NAME, FROM_CACHE, [])
    names = [container["name"] for container in admitted.pod["spec"]["initContainers"]]
    assert names == [c.SIDECAR_CONTAINER]


def test_a_binding_not_yet_cached_is_read_from_the_api_server_within_the_admission_timeout():
    api = Api({(NAMESPACE, NAME): BINDING})
    admitted = run_admit(pod(), api=api)
    assert admitted.source == FROM_API_SERVER and admitted.pod is not None
    assert api.reads == [(NAMESPACE, NAME, ADMISSION_READ_TIMEOUT_SECONDS)]


def test_a_binding_in_another_namespace_is_not_found():
    api = Api({("other", NAME): BINDING})
    with pytest.raises(Refused, match=f"does not exist in namespace '{NAMESPACE}'") as refused:
        run_admit(pod(), cache={("other", NAME): BINDING}, api=api)
    assert refused.value.code == 404
    assert api.reads == [(NAMESPACE, NAME, ADMISSION_READ_TIMEOUT_SECONDS)]


@pytest.mark.parametrize(("failure", "said"), [
    (ReadFailed("403 Forbidden"), "resolve: cannot read RolesAnywhereBinding 's3-reader' .*: 403 Forbidden"),
    (TimeoutError(), f"resolve: the API server did not answer .* within {ADMISSION_READ_TIMEOUT_SECONDS:g}s"),
])
def test_a_binding_the_api_server_cannot_give_is_refused_with_500_naming_the_stage(failure, said):
    with pytest.raises(Refused, match=said) as refused:
        run_admit(pod(), api=Api(failure=failure))
    assert refused.value.code == 500


def test_an_invalid_binding_is_refused_with_400_naming_the_field():
    broken = copy.deepcopy(BINDING)
    broken["spec"]["roleArn"] = "app-role"
    with pytest.raises(Refused, match="spec.roleArn") as refused:
        run_admit(pod(), cache={(NAMESPACE, NAME): broken})
    assert refused.value.code == 400


def test_a_pod_the_sidecar_cannot_join_is_refused_with_400():
    clashing = pod()
    clashing["spec"]["volumes"] = [{"name": c.CREDENTIALS_VOLUME, "emptyDir": {}}]
    with pytest.raises(Refused, match=c.CREDENTIALS_VOLUME) as refused:
        run_admit(clashing, cache={(NAMESPACE, NAME): BINDING})
    assert refused.value.code == 400


def test_injection_warnings_reach_the_pods_creator():
    noisy = pod()
    noisy["spec"]["hostNetwork"] = True
    assert any("hostNetwork" in warning for warning in run_admit(noisy, cache={(NAMESPACE, NAME): BINDING}).warnings)


# --- The AdmissionReview answer ------------------------------------------------------------------------


class Bindings:
    def __init__(self, cached: dict) -> None:
        self.cached = cached

    def get(self, namespace: str, name: str) -> dict | None:
        return self.cached.get((namespace, name))


class NoBindings:
    """An API server holding no binding."""

    async def get(self, path: str, **_: object) -> None:
        return None


def review(submitted: dict | None) -> dict:
    request = {"uid": "4b1d", "namespace": NAMESPACE, "operation": "CREATE"}
    if submitted is not None:
        request["object"] = submitted
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def answer(submitted: dict | None, cached: dict) -> dict:
    """handlers.inject's AdmissionReview response to a review of `submitted`."""
    runtime = Runtime(settings=Settings(), kube=NoBindings(), reconciler=None, bindings=Bindings(cached),
                      excluded_namespaces=("kube-system",), reported_workloads=ReportedOnce())
    response = asyncio.run(handlers.inject(review(copy.deepcopy(submitted)), runtime, logging.getLogger("test")))
    assert (response["apiVersion"], response["kind"], response["response"]["uid"]) == (
        "admission.k8s.io/v1", "AdmissionReview", "4b1d")
    return response["response"]


def test_the_webhook_answers_with_a_json_patch_that_turns_the_submitted_pod_into_the_injected_one():
    submitted = pod()
    response = answer(submitted, {(NAMESPACE, NAME): BINDING})
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    assert {op["op"] for op in operations} <= {"add", "replace"}, "nothing the pod's creator wrote is removed"
    assert {"/spec/initContainers", "/spec/volumes", "/metadata/labels"} <= {op["path"] for op in operations}
    expected = run_admit(submitted, cache={(NAMESPACE, NAME): BINDING}).pod
    assert jsonpatch.apply_patch(submitted, operations) == expected


def test_the_webhook_leaves_a_pod_it_does_not_inject_without_a_patch():
    submitted = pod()
    del submitted["metadata"]["annotations"][c.BINDING_ANNOTATION]
    assert answer(submitted, {}) == {"uid": "4b1d", "allowed": True}


def test_the_webhook_passes_warnings_to_the_pods_creator():
    noisy = pod()
    noisy["spec"]["hostNetwork"] = True
    assert any("hostNetwork" in warning for warning in answer(noisy, {(NAMESPACE, NAME): BINDING})["warnings"])


def test_the_webhook_answers_a_refusal_with_its_code_and_message():
    response = answer(pod(), {})
    assert response["allowed"] is False and response["status"]["code"] == 404
    assert "does not exist" in response["status"]["message"] and "patch" not in response


def test_a_review_without_a_pod_is_refused_with_400():
    assert answer(None, {})["status"]["code"] == 400


@pytest.mark.parametrize(("before", "after", "operations"), [
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1}, {"a": 1, "b": 2}, [{"op": "add", "path": "/b", "value": 2}]),
    ({"m": {"labels": {"x": "1"}}}, {"m": {"labels": {"x": "1", "y/z": "2"}}},
     [{"op": "replace", "path": "/m/labels", "value": {"x": "1", "y/z": "2"}}]),
    ({"m": {"k": 1}}, {"m": {"k": 1, "a/b~c": 2}}, [{"op": "add", "path": "/m/a~1b~0c", "value": 2}]),
    ({"s": {"c": [1]}, "gone": 0}, {"s": {"c": [1, 2]}},
     [{"op": "remove", "path": "/gone"}, {"op": "replace", "path": "/s/c", "value": [1, 2]}]),
    ({"s": 1}, {"s": {"c": 1}}, [{"op": "replace", "path": "/s", "value": {"c": 1}}]),
])  # fmt: skip
def test_json_patch_compares_two_levels_down_and_escapes_keys(before, after, operations):
    assert json_patch(before, after) == operations
    assert jsonpatch.apply_patch(before, operations) == after
