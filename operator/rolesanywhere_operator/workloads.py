"""Copy a workload's binding annotation into its pod template, with the opt-in label, and take both out
again (pure): the workload webhook applies it at admission; the operator never patches a workload.

`kubectl annotate deployment web rolesanywhere.dev/binding=s3-reader` changes the pod template, so the
workload's controller rolls its pods, which the webhook injects (they carry INJECT_LABEL, so the webhook
is called for them). Removing the workload's annotation removes the copy and the label, rolling the pods
back without the sidecar. A template annotation the user wrote (without COPIED_FROM_WORKLOAD_ANNOTATION)
is theirs and never touched; its template only gets the label it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import constants as c
from .status import Event

#: Workload kinds whose pod template the operator keeps in step: (group, version, plural).
WORKLOAD_RESOURCES = (("apps", "v1", "deployments"), ("apps", "v1", "statefulsets"), ("apps", "v1", "daemonsets"))


def template_patch(workload: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch bringing the pod template in step with the workload's annotation; None if it is."""
    wanted = ((workload.get("metadata") or {}).get("annotations") or {}).get(c.BINDING_ANNOTATION)
    template = (workload.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    labelled = ((template.get("metadata") or {}).get("labels") or {}).get(c.INJECT_LABEL) == c.INJECT_LABEL_VALUE
    copied = c.COPIED_FROM_WORKLOAD_ANNOTATION in annotations
    current = annotations.get(c.BINDING_ANNOTATION)
    if current is not None and not copied:
        # The user annotated the template itself: theirs (it wins over the workload's); it needs the label.
        return None if labelled else _patch({}, {c.INJECT_LABEL: c.INJECT_LABEL_VALUE})
    if wanted:
        if current == wanted and labelled:
            return None
        return _patch({c.BINDING_ANNOTATION: wanted, c.COPIED_FROM_WORKLOAD_ANNOTATION: "true"},
                      {c.INJECT_LABEL: c.INJECT_LABEL_VALUE})
    if copied:
        return _patch({c.BINDING_ANNOTATION: None, c.COPIED_FROM_WORKLOAD_ANNOTATION: None}, {c.INJECT_LABEL: None})
    return None


def _patch(annotations: dict[str, str | None], labels: dict[str, str | None]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {"spec": {"template": {"metadata": metadata}}}


def missed_template_event(workload: Mapping[str, Any]) -> Event:
    """The Warning for a workload whose template the webhook did not bring in step with its annotation."""
    metadata = workload.get("metadata") or {}
    kind = (workload.get("kind") or "workload").lower()
    return Event(
        "Warning",
        "TemplateNotInStep",
        f"the pod template does not match annotation {c.BINDING_ANNOTATION} (the operator's webhook missed "
        f"the change), so new pods are not injected as asked; apply it with: kubectl rollout restart "
        f"{kind}/{metadata.get('name')} -n {metadata.get('namespace')}",
    )


class ReportedOnce:
    """Which workload generations were reported, so each is reported once (its status updates are not)."""

    #: Workloads remembered; the oldest are forgotten first (a forgotten one may be reported again).
    LIMIT = 10_000

    def __init__(self) -> None:
        self._seen: dict[str, object] = {}

    def add(self, uid: str | None, generation: object) -> bool:
        """True the first time a (uid, generation) is seen."""
        if uid is None or self._seen.get(uid) == generation:
            return False
        self._seen.pop(uid, None)
        self._seen[uid] = generation
        while len(self._seen) > self.LIMIT:
            self._seen.pop(next(iter(self._seen)))
        return True
