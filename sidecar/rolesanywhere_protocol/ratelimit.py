"""A token bucket: calls a second on average, with a burst; the clock is passed in.

Shared by the operator (its verification calls across all bindings) and the emulator (the service's
CreateSession quota). Not thread-safe by itself: callers that share one across threads hold a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` calls a second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs a positive rate and a burst of at least 1, got {rate}, {burst}")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()

    def acquire(self) -> bool:
        """Take one token if there is one; whether there was."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
