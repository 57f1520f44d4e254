"""The periodic status refresh of every binding, run by the replica that leads the peering.

Events refresh a binding's status as they happen; this loop catches what no event announces: a
certificate passing its notAfter, a `secretRef` Secret (not watched) appearing or changing, a
Certificate deleted while no operator watched (each refresh creates a missing one again). It is
one operator-wide task rather than a kopf daemon per binding because kopf puts a finalizer on every
object with a daemon, and a finalizer would leave bindings (and their namespaces, and the CRD on
uninstall) stuck in deletion whenever no operator runs. The bindings' Certificates need no finalizer:
they are owned by the binding and garbage-collected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from rolesanywhere_protocol.clock import Clock, utc_now

from . import constants as c
from .kube import ApiError, Kube, path

#: kopf's default peer lifetime, assumed for peers that do not say theirs.
DEFAULT_PEER_LIFETIME = 60
#: Seconds one binding's periodic refresh may take (API calls and a verification call included).
REFRESH_TIMEOUT = 60.0


def leads(peering_status: Mapping[str, Any], own_priority: int, now: dt.datetime) -> bool:
    """Whether a replica with `own_priority` leads: no live peer in the peering's status ranks higher.

    The status maps each peer's identity to {priority, lastseen, lifetime}, as kopf writes it; a peer
    not seen within its lifetime is dead. Equal priorities both lead, as kopf itself would pause both.
    """
    for peer in peering_status.values():
        if not isinstance(peer, Mapping) or int(peer.get("priority", 0)) <= own_priority:
            continue
        try:
            last_seen = dt.datetime.fromisoformat(str(peer["lastseen"]))
        except (KeyError, ValueError):
            continue
        if last_seen.tzinfo is None:
            last_seen = last_seen.replace(tzinfo=dt.UTC)
        if now - last_seen <= dt.timedelta(seconds=float(peer.get("lifetime") or DEFAULT_PEER_LIFETIME)):
            return False
    return True


async def resync_forever(
    kube: Kube,
    refresh: Callable[[str, str], Awaitable[None]],
    bindings: Callable[[], Iterable[tuple[str, str]] | None],
    *,
    interval: float,
    peering: str | None,
    priority: int | None,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    now: Clock = utc_now,
) -> None:
    """Every `interval` seconds, refresh every binding's status, if this replica leads (or is alone).

    The bindings are the watch cache's (`bindings()`: (namespace, name) pairs), so a resync reads each
    binding once, as its refresh does, and lists none; only while the cache has not been filled (None)
    are they listed."""
    while True:
        await asyncio.sleep(interval)
        try:
            if peering and priority is not None:
                body = await kube.get(path(f"{c.KOPF_PEERING_GROUP}/v1", "clusterkopfpeerings", None, peering))
                if not leads((body or {}).get("status") or {}, priority, now()):
                    continue
            keys = bindings()
            if keys is None:
                keys = [(b["metadata"]["namespace"], b["metadata"]["name"])
                        for b in await kube.list(path(c.API_VERSION, c.PLURAL))]
        except ApiError as error:
            logger.warning("listing bindings for the status refresh failed: %s", error)
            continue
        for namespace, name in list(keys):
            try:
                # One binding whose refresh hangs must not hold up every other binding's.
                await asyncio.wait_for(refresh(namespace, name), timeout=REFRESH_TIMEOUT)
            except (ApiError, TimeoutError) as error:
                logger.warning("refreshing the status of %s/%s failed: %s", namespace, name,
                               error or f"no answer within {REFRESH_TIMEOUT:g} s")
            except Exception:  # a bug in one refresh must not end the loop: nothing else would refresh again
                logger.exception("refreshing the status of %s/%s failed", namespace, name)
