"""Figure 7: the load sidecars put on the Roles Anywhere service.

Simulated, not 500 processes: MASS_START `Refresher`s (the sidecar's real scheduling code, with its
real refresh_delay and jitter) run on one simulated clock, each with its own seeded random generator,
every fetch answering with credentials of the sidecar's default session duration. All start at the
same instant, the worst case of a mass start (a rollout, a node coming back). The peer's schedule
(`aws_signing_helper update`: refresh at expiry minus UpdateRefreshTime, five minutes, no jitter) is
simulated the same way. The peer's `serve` refreshes only when a client asks, so it has no schedule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rolesanywhere_protocol import Credentials
from rolesanywhere_protocol.ratelimit import TokenBucket
from rolesanywhere_sidecar import refresher
from rolesanywhere_sidecar.refresher import (
    BACKOFF_CAP_SECONDS,
    THROTTLED_BACKOFF_CAP_SECONDS,
    FetchFailed,
    Refresher,
)
from rolesanywhere_sidecar.settings import Settings

from .context import Context
from .report import FigureResult, Row

TITLE = "7 load on the Roles Anywhere service"
SIMULATED_HOURS = 24
STEADY_FROM_HOUR = 2  # calls per pod-hour are counted from here on, after the start wave
PEER_REFRESH_BEFORE_EXPIRY = 5 * 60  # aws_signing_helper update.go: UpdateRefreshTime
GOAL_SHARE = 0.05
QUOTA_PER_SECOND = 10.0  # the service's default CreateSession quota per account and region
THROTTLED_HOURS = 3  # long enough to see the refresh waves after a throttled start
THROTTLED_GOAL_FACTOR = 2.0  # the last sidecar holds credentials within twice the ideal time
EPOCH = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def simulate(sidecars: int, next_delay: Callable[[int, float], float]) -> list[float]:
    """Times (s) of every CreateSession call of `sidecars` all starting at 0, over SIMULATED_HOURS.

    `next_delay(i, t)` makes sidecar i's call at simulated time t and returns its wait until the next.
    """
    calls: list[float] = []
    queue = [(0.0, index) for index in range(sidecars)]
    heapq.heapify(queue)
    end = SIMULATED_HOURS * 3600
    while queue:
        at, index = heapq.heappop(queue)
        if at >= end:
            break
        calls.append(at)
        heapq.heappush(queue, (at + next_delay(index, at), index))
    return calls


def simulated_refreshers(
    sidecars: int, settings: Settings, clock: dict[str, float], accept: Callable[[], None] = lambda: None
) -> list[Refresher]:
    """The sidecar's real Refreshers on the simulated `clock`, each with its own seeded randomness; every
    fetch is first put to `accept` (which raises FetchFailed to refuse it), then answered with credentials
    of the default session duration."""

    def now() -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=clock["now"])

    def fetch():
        accept()
        expiration = now() + dt.timedelta(seconds=settings.session_duration)
        return Credentials("ASIA", "secret", "token", expiration, "arn:aws:iam::123456789012:role/r"), {}

    return [
        Refresher(fetch=fetch, publish=lambda _credentials: None, now=now, rng=random.Random(index),
                  refresh_fraction=settings.refresh_fraction)
        for index in range(sidecars)
    ]  # fmt: skip


def our_schedule(sidecars: int, settings: Settings) -> list[float]:
    clock = {"now": 0.0}
    refreshers = simulated_refreshers(sidecars, settings, clock)

    def next_delay(index: int, at: float) -> float:
        clock["now"] = at
        attempt = refreshers[index].attempt()
        if not attempt.published:
            raise RuntimeError("a simulated fetch failed")
        return attempt.delay

    return simulate(sidecars, next_delay)


@dataclass
class ThrottledStart:
    """A mass start against a service with a CreateSession quota, simulated to the last credentials."""

    accepted: list[float]  # times of the calls the service answered with credentials
    attempts: list[float]  # times of every call, throttled ones included
    ready_at: float  # when the last sidecar held credentials
    most_attempts: int  # of any one sidecar
    longest_wait: float  # between a throttled attempt of one sidecar and its next
    gave_up: int  # sidecars whose refresher reported a permanent failure


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Thousands of simulated 429s would each log a warning line."""
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def throttled_start(sidecars: int, settings: Settings, quota: float, hours: float) -> ThrottledStart:
    """`sidecars` real Refreshers starting at 0 against a service throttling (429) above `quota` calls a
    second (a token bucket with a burst of one second's quota, as the emulator's), for `hours`."""
    clock = {"now": 0.0}
    bucket = TokenBucket(quota, max(1, int(quota)), clock=lambda: clock["now"])
    accepted: list[float] = []

    def within_quota() -> None:
        if not bucket.acquire():
            raise FetchFailed("HTTP 429 ThrottlingException: Rate exceeded", permanent=False, throttled=True)
        accepted.append(clock["now"])

    refreshers = simulated_refreshers(sidecars, settings, clock, within_quota)
    ready: dict[int, float] = {}
    attempts_of = [0] * sidecars
    longest, gave_up = 0.0, 0
    queue = [(0.0, index) for index in range(sidecars)]
    heapq.heapify(queue)
    attempts: list[float] = []
    with _quiet(refresher.log):
        while queue:
            at, index = heapq.heappop(queue)
            if at >= hours * 3600:
                break
            clock["now"] = at
            attempts.append(at)
            attempts_of[index] += 1
            attempt = refreshers[index].attempt()
            gave_up += attempt.permanent_failure
            if attempt.published:
                ready.setdefault(index, at)
            else:
                longest = max(longest, attempt.delay)
            heapq.heappush(queue, (at + attempt.delay, index))
    return ThrottledStart(
        accepted, attempts, max(ready.values()) if len(ready) == sidecars else float("inf"),
        max(attempts_of), longest, gave_up,
    )  # fmt: skip


def peer_schedule(sidecars: int, duration: int) -> list[float]:
    return simulate(sidecars, lambda _index, _at: duration - PEER_REFRESH_BEFORE_EXPIRY)


def busiest_second(calls: list[float], since: float = 0.0) -> int:
    """The most calls within any one-second window starting at or after `since` (sliding)."""
    times = sorted(t for t in calls if t >= since)
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def per_pod_hour(calls: list[float], sidecars: int) -> float:
    steady = [t for t in calls if t >= STEADY_FROM_HOUR * 3600]
    return len(steady) / sidecars / (SIMULATED_HOURS - STEADY_FROM_HOUR)


def measure(ctx: Context) -> FigureResult:
    sidecars = ctx.scale.mass_start
    settings = Settings()
    ours = our_schedule(sidecars, settings)
    peer = peer_schedule(sidecars, settings.session_duration)
    goal = int(GOAL_SHARE * sidecars)
    ours_max, peer_max = busiest_second(ours), busiest_second(peer)
    after_start = 1.0  # everything after the first second: the refresh waves
    ours_waves, peer_waves = busiest_second(ours, after_start), busiest_second(peer, after_start)
    result = FigureResult(TITLE)
    result.rows += [
        Row(TITLE, "CreateSession calls per pod-hour", per_pod_hour(ours, sidecars), per_pod_hour(peer, sidecars),
            note=f"{settings.session_duration} s sessions, hours {STEADY_FROM_HOUR}-{SIMULATED_HOURS} of "
                 f"{sidecars} simulated sidecars; peer: `update`'s schedule"),
        Row(TITLE, f"max calls in one second, {sidecars} starting together", ours_max, peer_max, "calls",
            f"<= {goal} ({GOAL_SHARE:.0%})", ours_max <= goal,
            "the first fetch of every sidecar, at its start"),
        Row(TITLE, "max calls in one second, refresh waves after the start", ours_waves, peer_waves, "calls",
            f"<= {goal} ({GOAL_SHARE:.0%})", ours_waves <= goal,
            f"over {SIMULATED_HOURS} simulated hours"),
    ]  # fmt: skip
    throttled = throttled_start(sidecars, settings, QUOTA_PER_SECOND, THROTTLED_HOURS)
    ideal = sidecars / QUOTA_PER_SECOND
    waves = busiest_second(throttled.accepted, throttled.ready_at + 1)
    result.rows += [
        Row(TITLE, f"{sidecars} starting together, {QUOTA_PER_SECOND:g}/s quota: last one holding credentials",
            throttled.ready_at, None, "s", f"<= {THROTTLED_GOAL_FACTOR:g}x the ideal {ideal:g} s",
            throttled.ready_at <= THROTTLED_GOAL_FACTOR * ideal,
            f"{len(throttled.attempts)} calls for {sidecars} sidecars ({len(throttled.attempts) / sidecars:.1f} "
            f"each); at most {throttled.most_attempts} attempts and {throttled.longest_wait:.0f} s between two "
            f"of one sidecar; {throttled.gave_up} gave up"),
        Row(TITLE, "max accepted calls in one second, refresh waves after a throttled start", waves, None,
            "calls", f"<= {QUOTA_PER_SECOND:g} (the quota)", waves <= QUOTA_PER_SECOND,
            f"over {THROTTLED_HOURS} simulated hours"),
    ]  # fmt: skip
    result.findings.append(
        f"**Throttled mass start.** {sidecars} Refreshers against a simulated service that answers 429 above "
        f"{QUOTA_PER_SECOND:g} calls a second (the service's default CreateSession quota; the emulator's "
        f"`quotas.createSessionPerSecond`): each 429 is retried after the refresher's backoff (equal jitter, "
        f"doubling from 1 s, capped at {THROTTLED_BACKOFF_CAP_SECONDS:g} s after a 429 rather than the "
        f"{BACKOFF_CAP_SECONDS:g} s of an outage, since the quota refills every second), so the herd spreads "
        f"itself without leaving the quota idle; no sidecar "
        f"gives up, since a throttled call is never a permanent failure."
    )
    result.findings.append(
        f"Simulated with the sidecar's own Refresher (refresh_fraction {settings.refresh_fraction}, jitter "
        f"from refresher.JITTER_OF_LIFETIME), not {sidecars} processes. The first fetch has no jitter: a "
        f"sidecar fetches as it starts, since the pod's app waits for it (figure 5); so sidecars started in "
        f"the same second all call in that second, and only later refreshes are spread. The peer's `update` "
        f"refreshes at a fixed five minutes before expiry, so its sidecars keep calling together."
    )
    return result
