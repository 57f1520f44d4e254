"""The wall clock, as every component reads it (passed in, so tests give their own)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

#: What components take where they need the time.
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """Now, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)
