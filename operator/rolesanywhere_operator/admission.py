"""Admitting a pod, pure of kopf: whether it gets the sidecar, from which binding, and the pod it becomes.

Stages: should inject -> resolve the binding -> build. Every refusal names its stage and carries the HTTP
code the API server shows. `review_response` turns the outcome into the AdmissionReview answer (the
JSON patch from the submitted pod to the injected one, the warnings, or the refusal); handlers.inject
only wires the two to the operator's runtime. tests/unit/test_operator_admission.py covers every outcome.

The pod webhook is answered here, not through kopf's admission handlers: kopf deep-copies the pod and
diffs it with jsonpatch on every request, which took three quarters of the CPU of an admission (bench
figure 4's profile); `json_patch` compares the two pods field by field, one level down.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import constants as c
from .injection import InjectionError, inject_pod, should_inject
from .settings import Settings
from .spec import InvalidBindingError, parse_binding

#: Seconds the webhook waits for a binding it has not cached, well inside its own timeout (webhook.py), so a
#: slow API server yields this webhook's error rather than the API server's generic one.
ADMISSION_READ_TIMEOUT_SECONDS = 5.0
#: Where a binding was found: in the operator's watch cache, or read from the API server (created a moment ago).
FROM_CACHE, FROM_API_SERVER = "the watch cache", "the API server"


class ReadFailed(Exception):
    """The API server answered a binding read with an error (the message says which)."""


class Refused(Exception):
    """The pod is refused: `message` names the stage, `code` is the HTTP status the API server shows."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Admitted:
    """The pod may be created: as `pod` (None: as submitted), with these warnings for its creator."""

    pod: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    #: The binding injected and where it was read (for the log line).
    binding: str | None = None
    source: str | None = None


#: The cached binding (namespace, name), or None.
CachedBinding = Callable[[str, str], "dict[str, Any] | None"]
#: Reads a binding (namespace, name) from the API server within a timeout: None when there is none;
#: raises ReadFailed or TimeoutError.
ReadBinding = Callable[[str, str, float], Awaitable["dict[str, Any] | None"]]


async def admit(
    pod: dict[str, Any],
    namespace: str,
    *,
    settings: Settings,
    excluded_namespaces: tuple[str, ...],
    cached: CachedBinding,
    read: ReadBinding,
    identity_ca: str | None = None,
) -> Admitted:
    """What to do with a pod being created; Refused when it may not be created."""
    try:
        decision = should_inject(pod, namespace, excluded_namespaces)
    except InjectionError as error:
        raise Refused(str(error), code=400) from error
    if not decision.inject or decision.binding is None:
        return Admitted(warnings=tuple(decision.warnings))
    name = decision.binding

    found, source = cached(namespace, name), FROM_CACHE
    if found is None:  # created a moment ago, or not at all
        source = FROM_API_SERVER
        try:
            found = await read(namespace, name, ADMISSION_READ_TIMEOUT_SECONDS)
        except ReadFailed as error:
            raise Refused(f"resolve: cannot read {c.KIND} {name!r} in namespace {namespace!r}: {error}",
                          code=500) from error
        except TimeoutError as error:
            raise Refused(
                f"resolve: the API server did not answer for {c.KIND} {name!r} in namespace {namespace!r} "
                f"within {ADMISSION_READ_TIMEOUT_SECONDS:g}s", code=500,
            ) from error
    if found is None:
        raise Refused(
            f"resolve: {c.KIND} {name!r} named by annotation {c.BINDING_ANNOTATION} does not exist in namespace "
            f"{namespace!r}",
            code=404,
        )
    try:
        binding = parse_binding(found)
        injected = inject_pod(pod, binding, settings, identity_ca=identity_ca)
    except (InvalidBindingError, InjectionError) as error:
        raise Refused(str(error), code=400) from error
    return Admitted(pod=injected.pod, warnings=tuple(injected.warnings), binding=binding.name, source=source)


def json_patch(before: Mapping[str, Any], after: Mapping[str, Any], depth: int = 2) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) turning `before` into `after`: a field that differs is replaced whole once
    `depth` levels down (metadata.labels, spec.containers), a field that is new is added, one gone removed."""
    return _diff(before, after, "", depth)


def _diff(before: Mapping[str, Any], after: Mapping[str, Any], where: str, depth: int) -> list[dict[str, Any]]:
    operations: list[dict[str, Any]] = [
        {"op": "remove", "path": f"{where}/{_escaped(key)}"} for key in before if key not in after
    ]
    for key, value in after.items():
        at = f"{where}/{_escaped(key)}"
        if key not in before:
            operations.append({"op": "add", "path": at, "value": value})
        elif before[key] != value:
            old = before[key]
            if depth > 1 and isinstance(old, Mapping) and isinstance(value, Mapping):
                operations.extend(_diff(old, value, at, depth - 1))
            else:
                operations.append({"op": "replace", "path": at, "value": value})
    return operations


def _escaped(key: str) -> str:
    """A key as one JSON pointer segment (RFC 6901): "~" and "/" escaped."""
    return str(key).replace("~", "~0").replace("/", "~1")


def review_response(review: Mapping[str, Any], outcome: Admitted | Refused, submitted: Mapping[str, Any] | None
                    ) -> dict[str, Any]:
    """The AdmissionReview answering `review`: the outcome of admitting its pod (`submitted`)."""
    answer: dict[str, Any] = {"uid": (review.get("request") or {}).get("uid", "")}
    if isinstance(outcome, Refused):
        answer.update(allowed=False, status={"code": outcome.code, "message": str(outcome)})
    else:
        answer["allowed"] = True
        if outcome.warnings:
            answer["warnings"] = list(outcome.warnings)
        operations = json_patch(submitted or {}, outcome.pod) if outcome.pod is not None else []
        if operations:
            answer["patchType"] = "JSONPatch"
            answer["patch"] = base64.b64encode(json.dumps(operations).encode()).decode("ascii")
    return {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": review.get("kind", "AdmissionReview"), "response": answer}
