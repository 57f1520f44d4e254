"""Admitting a pod, pure of kopf: whether it gets the sidecar, from which binding, and the pod it becomes.

Stages: should inject -> resolve the binding -> build. Every refusal names its stage and carries the HTTP
code the API server shows. handlers.inject only adapts this to kopf (its AdmissionError, the patch and
the warnings); tests/unit/test_operator_admission.py covers every outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
        injected = inject_pod(pod, binding, settings)
    except (InvalidBindingError, InjectionError) as error:
        raise Refused(str(error), code=400) from error
    return Admitted(pod=injected.pod, warnings=tuple(injected.warnings), binding=binding.name, source=source)
