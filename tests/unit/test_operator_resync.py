"""Who runs the periodic status refresh: the replica no live peer outranks."""

from __future__ import annotations

import datetime as dt

from rolesanywhere_operator.resync import leads

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
