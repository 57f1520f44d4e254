"""Every binding of the cluster, in memory, so admission answers without a call to the API server.

Every replica keeps it, leader or standby, because every replica serves the webhook (kopf's own
watches pause on a standby, so kopf's indexes would go stale there). One list, then one watch from
the list's resourceVersion; when the watch ends it resumes from the last version seen, and when the
server says that version is gone (410) the cache lists again. Only what admission reads is kept
(metadata naming the binding, and its spec), not managed fields or status.

A binding created a moment ago may not have arrived yet: the webhook then reads it once from the API
server (a miss costs one GET; a hit costs none). `apply_event` is pure bookkeeping, tested alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from . import constants as c
from .kube import ApiError, Kube, path

#: Seconds a watch request stays open before the server ends it and the cache resumes.
WATCH_TIMEOUT_SECONDS = 300
#: Seconds to wait before listing again after the API server could not be reached.
RETRY_SECONDS = 2.0

Key = tuple[str, str]


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What admission reads of a binding (parse_binding's input)."""
    metadata = body.get("metadata") or {}
    return {
        "metadata": {k: metadata[k] for k in ("name", "namespace", "uid", "generation", "resourceVersion")
                     if k in metadata},
        "spec": body.get("spec"),
    }


def key_of(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def apply_event(bindings: dict[Key, dict[str, Any]], event: Mapping[str, Any]) -> str | None:
    """Apply one watch event to `bindings`; the resourceVersion to resume from (None: unchanged).

    Raises ApiError(410) for an ERROR event saying the version is gone, so the caller lists again.
    """
    kind, body = event.get("type"), event.get("object") or {}
    version = (body.get("metadata") or {}).get("resourceVersion")
    if kind == "ERROR":
        raise ApiError("WATCH", c.PLURAL, int(body.get("code") or 500), str(body.get("message", "")))
    if kind in ("ADDED", "MODIFIED"):
        bindings[key_of(body)] = slim(body)
    elif kind == "DELETED":
        bindings.pop(key_of(body), None)
    return str(version) if version else None


class BindingCache:
    def __init__(self, kube: Kube, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self.kube = kube
        self.logger = logger
        self.bindings: dict[Key, dict[str, Any]] = {}
        self.synced = asyncio.Event()  # set once the first list arrived

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The binding as last seen, or None when the cache does not have it (yet)."""
        return self.bindings.get((namespace, name))

    def keys(self) -> list[Key] | None:
        """Every binding's (namespace, name); None until the first list arrived (or while it is relisting
        after a failure of its own)."""
        return list(self.bindings) if self.synced.is_set() else None

    async def run(self) -> None:
        """List and watch until cancelled."""
        collection = path(c.API_VERSION, c.PLURAL)
        while True:
            try:
                items, version = await self.kube.list_with_version(collection)
                self.bindings = {key_of(item): slim(item) for item in items}
                self.synced.set()
                while True:
                    async for event in self.kube.watch(
                        collection, resource_version=version, timeout_seconds=WATCH_TIMEOUT_SECONDS
                    ):
                        version = apply_event(self.bindings, event) or version
            except ApiError as error:
                if error.status != 410:
                    self.logger.warning("binding cache: %s; listing again in %.0fs", error, RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)
            except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as error:
                self.logger.warning("binding cache: watch failed (%s); listing again in %.0fs", error, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:
                # A bug must not leave admission reading a cache nobody updates: empty, every lookup is a GET.
                self.logger.exception("binding cache failed; reading bindings from the API server until it is back")
                self.bindings = {}
                self.synced.clear()
                await asyncio.sleep(RETRY_SECONDS)
