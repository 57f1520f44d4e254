"""Copy a workload's binding annotation into its pod template, and take it out again (pure).

`kubectl annotate deployment web rolesanywhere.dev/binding=s3-reader` changes the pod template, so the
workload's controller rolls its pods, which the webhook injects. Removing the workload's annotation
removes the copy, rolling the pods back without the sidecar. A template annotation the user wrote
(without COPIED_FROM_WORKLOAD_ANNOTATION) is theirs and never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import constants as c

#: Workload kinds whose pod template the operator keeps in step: (group, version, plural).
WORKLOAD_RESOURCES = (("apps", "v1", "deployments"), ("apps", "v1", "statefulsets"), ("apps", "v1", "daemonsets"))


def template_patch(workload: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch bringing the pod template in step with the workload's annotation; None if it is."""
    wanted = ((workload.get("metadata") or {}).get("annotations") or {}).get(c.BINDING_ANNOTATION)
    template = (workload.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    copied = c.COPIED_FROM_WORKLOAD_ANNOTATION in annotations
    current = annotations.get(c.BINDING_ANNOTATION)
    if wanted:
        if current == wanted and copied:
            return None
        if current is not None and not copied:
            return None  # the user annotated the template itself: theirs
        return _patch({c.BINDING_ANNOTATION: wanted, c.COPIED_FROM_WORKLOAD_ANNOTATION: "true"})
    if copied:
        return _patch({c.BINDING_ANNOTATION: None, c.COPIED_FROM_WORKLOAD_ANNOTATION: None})
    return None


def _patch(annotations: dict[str, str | None]) -> dict[str, Any]:
    return {"spec": {"template": {"metadata": {"annotations": annotations}}}}
