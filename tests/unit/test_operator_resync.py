"""The periodic status refresh: who runs it (the replica no live peer outranks), and what it refreshes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from rolesanywhere_operator.resync import leads, resync_forever

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def peer(priority: int, seen_seconds_ago: float, lifetime: int = 60) -> dict:
    return {"priority": priority, "lastseen": (NOW - dt.timedelta(seconds=seen_seconds_ago)).isoformat(),
            "lifetime": lifetime}


def test_alone_it_leads():
    assert leads({}, 5, NOW)


def test_a_live_higher_priority_peer_leads_instead():
    status = {"me": peer(5, 1), "other": peer(9, 10)}
    assert not leads(status, 5, NOW)
    assert leads(status, 9, NOW)


def test_a_dead_higher_priority_peer_does_not_count():
    assert leads({"me": peer(5, 1), "gone": peer(9, 61)}, 5, NOW)
    assert leads({"me": peer(5, 1), "gone": peer(9, 11, lifetime=10)}, 5, NOW)


def test_lower_and_equal_priorities_do_not_stop_it():
    assert leads({"me": peer(5, 1), "low": peer(3, 1), "same": peer(5, 1)}, 5, NOW)


def test_a_malformed_entry_is_ignored():
    assert leads({"me": peer(5, 1), "odd": "text", "no-date": {"priority": 9}}, 5, NOW)


class ListingKube:
    """An API server the resync must not list bindings from while the watch cache has them."""

    def __init__(self) -> None:
        self.listed = 0

    async def list(self, api_path: str, **_: object) -> list[dict]:
        self.listed += 1
        return [{"metadata": {"namespace": "shop", "name": "listed"}}]


def resync_once(bindings) -> tuple[list[tuple[str, str]], int]:
    kube, refreshed = ListingKube(), []

    async def refresh(namespace: str, name: str) -> None:
        refreshed.append((namespace, name))
        if len(refreshed) == 2 or bindings() is None:
            raise asyncio.CancelledError  # one round is enough

    async def scenario() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await resync_forever(kube, refresh, bindings, interval=0, peering=None, priority=None,
                                 logger=logging.getLogger("test"))

    asyncio.run(scenario())
    return refreshed, kube.listed


def test_the_resync_refreshes_the_bindings_of_the_watch_cache_without_listing_them():
    assert resync_once(lambda: [("shop", "a"), ("web", "b")]) == ([("shop", "a"), ("web", "b")], 0)


def test_the_resync_lists_the_bindings_while_the_watch_cache_is_not_filled():
    assert resync_once(lambda: None) == ([("shop", "listed")], 1)
