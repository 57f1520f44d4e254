"""The opted-in pods, as the pod watch last showed them, by the binding they name.

The operator watches pods with the server-side selector INJECT_LABEL (every injected pod carries it,
and so does every missed one: see missed.py). A binding's status is computed from this index instead
of listing its pods on every refresh: in a rollout of N pods each pod's events refreshed the status, and
each refresh listed N pods (bench figure 4's profile: most of the operator's time went into decoding
those lists). Only what the status reads of a pod is kept (bench figure 6: memory at 5,000 pods).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import constants as c

Key = tuple[str, str]  # (namespace, binding)


def slim(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What count_pods (status.py) and plan (missed.py) read of a pod."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    kept_metadata = {k: metadata[k] for k in ("name", "uid", "deletionTimestamp") if metadata.get(k)}
    kept_metadata["labels"] = {k: v for k, v in (metadata.get("labels") or {}).items() if k == c.INJECTED_LABEL}
    binding = (metadata.get("annotations") or {}).get(c.BINDING_ANNOTATION)
    if binding is not None:
        kept_metadata["annotations"] = {c.BINDING_ANNOTATION: binding}
    owners = [
        {"kind": o.get("kind"), "controller": True} for o in metadata.get("ownerReferences") or [] if o.get("controller")
    ]
    if owners:
        kept_metadata["ownerReferences"] = owners
    conditions = [
        {"type": "Ready", "status": cond.get("status")} for cond in status.get("conditions") or []
        if cond.get("type") == "Ready"
    ]  # fmt: skip
    return {"metadata": kept_metadata, "status": {"phase": status.get("phase"), "conditions": conditions}}


def binding_of(pod: Mapping[str, Any]) -> str | None:
    """The binding a pod belongs to: the one it was injected for, else the one its annotation names."""
    metadata = pod.get("metadata") or {}
    injected = (metadata.get("labels") or {}).get(c.INJECTED_LABEL)
    if injected:
        return str(injected)
    named = str((metadata.get("annotations") or {}).get(c.BINDING_ANNOTATION, "")).strip()
    return named or None


class PodIndex:
    def __init__(self) -> None:
        self._pods: dict[Key, dict[str, dict[str, Any]]] = {}  # by binding, then by pod uid
        self._where: dict[str, Key] = {}  # pod uid -> binding key, to move a pod whose binding changed

    def update(self, event_type: str | None, namespace: str, pod: Mapping[str, Any]) -> set[Key]:
        """Apply one watch event; the bindings whose view changed (their status needs a refresh)."""
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        before = self._where.pop(uid, None)
        old = self._pods.get(before, {}).pop(uid, None) if before else None
        if before and not self._pods.get(before):
            self._pods.pop(before, None)
        binding = binding_of(pod)
        if event_type == "DELETED" or binding is None:
            return {before} if before else set()
        key, entry = (namespace, binding), slim(pod)
        self._pods.setdefault(key, {})[uid] = entry
        self._where[uid] = key
        changed = {before} if before and before != key else set()
        if before != key or entry != old:
            changed.add(key)
        return changed

    def pods(self, namespace: str, binding: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(injected, missed): the binding's injected pods, and those that name it but carry no sidecar."""
        entries = list(self._pods.get((namespace, binding), {}).values())
        injected = [p for p in entries if p["metadata"]["labels"].get(c.INJECTED_LABEL)]
        return injected, [p for p in entries if not p["metadata"]["labels"].get(c.INJECTED_LABEL)]
