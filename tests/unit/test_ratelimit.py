"""The token bucket the operator's verification and the emulator's quota share."""

from __future__ import annotations

import pytest
from rolesanywhere_protocol.ratelimit import TokenBucket


def test_a_burst_then_the_rate():
    clock = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: clock[0])
    assert [bucket.acquire() for _ in range(4)] == [True, True, True, False]
    clock[0] += 0.5  # one token back at 2 a second
    assert [bucket.acquire(), bucket.acquire()] == [True, False]
    clock[0] += 100  # never more than the burst saved up
    assert sum(bucket.acquire() for _ in range(10)) == 3


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_a_bucket_that_could_never_allow_a_call_is_refused(rate, burst):
    with pytest.raises(ValueError, match="positive rate and a burst of at least 1"):
        TokenBucket(rate, burst)
