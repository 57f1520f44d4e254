"""Pods that opted in for a binding but run without its sidecar, and what to do about them (pure).

A pod carrying INJECT_LABEL is sent to the Fail webhook, so it is normally refused rather than admitted
without credentials. It can still exist uninjected: created before the operator was installed, while
the webhook configuration was missing (a reinstall), or through a webhook whose failurePolicy is Ignore.
Such a pod is counted in the binding's status (status.pods.missed) and, where a controller owns it and
the binding's spec.missedPods is Recreate (the default), deleted so its controller creates it again,
this time injected. A bare pod, or one of a binding set to Report, only gets a Warning Event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import constants as c
from .spec import Binding
from .status import Event

#: At most this many missed pods are named in the status; the count is always complete.
NAMED_IN_STATUS = 20


@dataclass(frozen=True)
class MissedPods:
    names: tuple[str, ...]  # every live missed pod of the binding, sorted
    recreate: tuple[str, ...]  # those to delete, so their controller creates them injected
    events: tuple[Event, ...]


def plan(
    binding: Binding, pods: Sequence[Mapping[str, Any]], previous: Mapping[str, Any] | None, *, ready: bool
) -> MissedPods:
    """What to do about the binding's missed pods among `pods` (opted-in pods without the sidecar). Pods are
    recreated only while the binding is `ready`: until then the webhook would refuse them again."""
    mine = sorted(
        (p for p in pods if _names_binding(p, binding.name) and _live(p)), key=lambda p: p["metadata"]["name"]
    )
    recreating = ready and binding.missed_pods == c.MISSED_PODS_RECREATE
    recreate = [p for p in mine if recreating and _controller(p)]
    seen = set(((previous or {}).get("pods") or {}).get("missedPods") or ())
    events = [
        Event("Normal", "RecreatingPod",
              f"pod {p['metadata']['name']} runs without the sidecar (admitted while no webhook answered for it); "
              f"deleted so its {_controller(p)} creates it again, injected")
        for p in recreate
    ] + [
        Event("Warning", "PodNotInjected",
              f"pod {p['metadata']['name']} opted in ({c.INJECT_LABEL}) but runs without the sidecar, so without "
              f"credentials; recreate it ({_why_kept(binding, p, ready)})")
        for p in mine if p not in recreate and p["metadata"]["name"] not in seen
    ]  # fmt: skip
    return MissedPods(
        names=tuple(p["metadata"]["name"] for p in mine),
        recreate=tuple(p["metadata"]["name"] for p in recreate),
        events=tuple(events),
    )


def status_fields(missed: MissedPods) -> dict[str, Any]:
    """What status.pods says of them."""
    fields: dict[str, Any] = {"missed": len(missed.names)}
    if missed.names:
        fields["missedPods"] = list(missed.names[:NAMED_IN_STATUS])
    return fields


def _why_kept(binding: Binding, pod: Mapping[str, Any], ready: bool) -> str:
    if not _controller(pod):
        return "no controller owns it"
    if binding.missed_pods != c.MISSED_PODS_RECREATE:
        return "spec.missedPods is Report"
    return "the binding is not Ready, so it would not be injected now either"


def _names_binding(pod: Mapping[str, Any], binding: str) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(c.BINDING_ANNOTATION, "")).strip() == binding


def _live(pod: Mapping[str, Any]) -> bool:
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and (pod.get("status") or {}).get(
        "phase"
    ) not in ("Succeeded", "Failed")


def _controller(pod: Mapping[str, Any]) -> str | None:
    """The kind of the controller that owns the pod (ReplicaSet, Job, ...), None for a bare pod."""
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("kind"))
    return None
