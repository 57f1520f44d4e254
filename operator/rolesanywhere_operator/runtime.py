"""The operator's runtime: one frozen value built once at start-up (handlers.configure) and read by every
handler from kopf's memo, instead of attributes set on the memo here and there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from . import constants as c
from .binding_cache import BindingCache
from .kube import Kube
from .reconcile import Reconciler
from .settings import Settings
from .workloads import ReportedOnce


def excluded_namespaces(settings: Settings) -> tuple[str, ...]:
    """Namespaces the webhook never sees and the operator never touches: the system's, its own, the admin's."""
    return (
        *c.EXCLUDED_NAMESPACES,
        *([settings.operator_namespace] if settings.operator_namespace else []),
        *(settings.webhook_excluded_namespaces or ()),
    )


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    kube: Kube
    reconciler: Reconciler
    #: Every binding, from a watch: what admission reads first.
    bindings: BindingCache
    excluded_namespaces: tuple[str, ...]
    #: Workload generations already reported as not in step with their annotation.
    reported_workloads: ReportedOnce
    #: What runs beside kopf's handlers (the binding watch, the resync, the webhook configuration's upkeep):
    #: cancelled at clean-up.
    tasks: tuple[asyncio.Task[None], ...] = ()
    #: The CA bundle (PEM) of the served endpoints, once serving: a per-pod identity pod's sidecar trusts it.
    identity_ca: Callable[[], str | None] = lambda: None

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.kube.close()
