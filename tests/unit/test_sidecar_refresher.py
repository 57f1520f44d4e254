"""Refresh schedule, backoff and the refresher's behaviour on failures (fake clock, seeded randomness)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
from pathlib import Path

import pytest
from rolesanywhere_protocol.credentials import Credentials
from rolesanywhere_sidecar import refresher as refresher_module
from rolesanywhere_sidecar.logs import LOGGER_NAME
from rolesanywhere_sidecar.refresher import (
    BACKOFF_CAP_SECONDS,
    CERTIFICATE_POLL_SECONDS,
    THROTTLED_BACKOFF_CAP_SECONDS,
    CertificateFilesMissing,
    FetchFailed,
    Refresher,
    backoff_delay,
    refresh_delay,
)

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> dt.datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += dt.timedelta(seconds=seconds)


@pytest.fixture
def records():
    """Log records of the sidecar's loggers, whatever an earlier test configured."""
    collected: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = collected.append
    logger = logging.getLogger(LOGGER_NAME)
    saved_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield collected
    logger.removeHandler(handler)
    logger.setLevel(saved_level)


def credentials(clock: Clock, number: int, lifetime: float = 3600) -> Credentials:
    return Credentials(
        access_key_id=f"ASIA{number:08d}",
        secret_access_key=f"secret{number}",
        session_token=f"session{number}",
        expiration=clock() + dt.timedelta(seconds=lifetime),
        role_arn="arn:aws:iam::123456789012:role/app",
    )


class LiveFetch:
    """Fresh credentials of `lifetime` at every call, dated by the clock at that moment."""

    def __init__(self, clock: Clock, lifetime: float = 3600) -> None:
        self.clock, self.lifetime, self.calls = clock, lifetime, 0

    def __call__(self):
        self.calls += 1
        return credentials(self.clock, self.calls, self.lifetime), {}


class ScriptedFetch:
    """Plays back a list of outcomes: Credentials are returned, exceptions raised."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome, {"certificate_serial": "abc"}


def make_refresher(fetch, clock: Clock, published: list, seed: int = 7) -> Refresher:
    return Refresher(fetch=fetch, publish=published.append, now=clock, rng=random.Random(seed))


def test_refresh_comes_at_the_fraction_of_the_lifetime_plus_or_minus_ten_percent():
    rng = random.Random(1)
    delays = [refresh_delay(3600, fraction=0.5, rng=rng) for _ in range(2000)]
    assert 0.4 * 3600 <= min(delays) < 0.42 * 3600
    assert 0.58 * 3600 < max(delays) <= 0.6 * 3600
    assert len({round(d) for d in delays}) > 500  # pods started together spread out


def test_the_schedule_is_deterministic_for_a_given_random_generator():
    first = [refresh_delay(900, fraction=0.5, rng=random.Random(3)) for _ in range(3)]
    assert first == [refresh_delay(900, fraction=0.5, rng=random.Random(3)) for _ in range(3)]


def test_a_late_fraction_still_refreshes_before_expiry_and_short_sessions_do_not_loop():
    rng = random.Random(2)
    assert all(refresh_delay(7200, fraction=0.9, rng=rng) <= 0.95 * 7200 for _ in range(500))
    # A 900 s session is held to the SDK-safe deadline (see the next test), and still no loop: ~every 220 s.
    assert min(refresh_delay(900, fraction=0.5, rng=rng) for _ in range(500)) >= 0.8 * (900 - 660)
    assert refresh_delay(-5, fraction=0.5, rng=rng) == refresher_module.MIN_REFRESH_SECONDS
    # Credentials arriving with less than the SDK margin left (a skewed clock) are not refetched in a loop.
    assert refresh_delay(600, fraction=0.5, rng=rng) == refresher_module.MIN_EARLY_REFRESH_SECONDS


def test_short_sessions_are_refreshed_before_the_sdks_mandatory_refresh_window_opens():
    """botocore blocks every call on a refresh once its credentials have less than 600 s left: the sidecar
    must already hold new ones by then, a minute ahead (review finding L7)."""
    rng = random.Random(4)
    for lifetime in (900, 1200, 1800):
        delays = [refresh_delay(lifetime, fraction=0.5, rng=rng) for _ in range(500)]
        assert max(delays) <= lifetime - 660
        assert len({round(d) for d in delays}) > 20, "pods started together still spread out"
    assert max(refresh_delay(900, fraction=0.5, rng=rng) for _ in range(500)) <= 240
    # Long sessions keep the fraction's schedule: the deadline is far later.
    assert max(refresh_delay(3600, fraction=0.5, rng=rng) for _ in range(500)) <= 0.6 * 3600


def test_backoff_doubles_with_jitter_up_to_the_cap():
    rng = random.Random(4)
    for failures in range(1, 12):
        ceiling = min(BACKOFF_CAP_SECONDS, 2 ** (failures - 1))
        delays = [backoff_delay(failures, remaining_seconds=None, rng=rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed
    assert backoff_delay(10_000, remaining_seconds=None, rng=rng) <= BACKOFF_CAP_SECONDS


def test_a_throttled_fetch_backs_off_no_further_than_the_throttling_cap():
    rng = random.Random(6)
    throttled = [backoff_delay(30, remaining_seconds=None, rng=rng, throttled=True) for _ in range(200)]
    assert THROTTLED_BACKOFF_CAP_SECONDS / 2 <= min(throttled) and max(throttled) <= THROTTLED_BACKOFF_CAP_SECONDS
    assert THROTTLED_BACKOFF_CAP_SECONDS < BACKOFF_CAP_SECONDS / 2
    assert min(backoff_delay(30, remaining_seconds=None, rng=rng) for _ in range(200)) >= BACKOFF_CAP_SECONDS / 2


def test_the_refresher_uses_the_throttling_cap_for_a_429(records):
    clock, published = Clock(), []
    throttled = FetchFailed("HTTP 429 ThrottlingException: Rate exceeded", permanent=False, throttled=True)
    refresher = make_refresher(ScriptedFetch(*[throttled] * 12), clock, published)
    delays = [refresher.attempt().delay for _ in range(12)]
    assert max(delays) <= THROTTLED_BACKOFF_CAP_SECONDS and delays[-1] >= THROTTLED_BACKOFF_CAP_SECONDS / 2


def test_backoff_retries_several_times_before_the_last_good_credentials_expire():
    rng = random.Random(5)
    assert all(backoff_delay(20, remaining_seconds=100, rng=rng) <= 25 for _ in range(200))
    assert all(backoff_delay(20, remaining_seconds=1, rng=rng) <= 1 for _ in range(200))


def test_success_publishes_and_schedules_the_next_refresh(records):
    clock, published = Clock(), []
    # An hour's lifetime: a shorter one (this test had 1000 s) is now held to the SDK-safe deadline.
    first = credentials(clock, 1, lifetime=3600)
    refresher = make_refresher(ScriptedFetch(first), clock, published)
    attempt = refresher.attempt()
    assert attempt.published and published == [first] and refresher.current is first
    assert 1440 <= attempt.delay <= 2160
    [line] = [r for r in records if r.getMessage() == "credentials refreshed"]
    assert line.access_key_id == "ASIA00000001" and line.certificate_serial == "abc"


def test_failures_keep_the_last_good_credentials_back_off_and_are_logged_once_each(records):
    clock, published = Clock(), []
    good = credentials(clock, 1, lifetime=1000)
    service_error = FetchFailed(
        "CreateSession failed: HTTP 503 ServiceUnavailable: try later", permanent=False
    )
    fetch = ScriptedFetch(good, service_error, service_error, service_error, credentials(clock, 2))
    refresher = make_refresher(fetch, clock, published)
    refresher.attempt()
    clock.advance(500)
    delays = []
    for _ in range(3):
        attempt = refresher.attempt()
        assert not attempt.published and refresher.current is good
        delays.append(attempt.delay)
        clock.advance(attempt.delay)
    assert delays[0] <= 1 < delays[2]  # 0.5-1 s, then 1-2 s, then 2-4 s
    failures = [r for r in records if r.levelno == logging.WARNING]
    assert len(failures) == 3
    assert all("HTTP 503 ServiceUnavailable: try later" in r.getMessage() for r in failures)
    assert "last good credentials, valid until" in failures[0].serving
    assert [r.attempt for r in failures] == [1, 2, 3]
    assert refresher.attempt().published
    assert published[-1].access_key_id == "ASIA00000002" and refresher.failures == 0
    assert records[-1].failed_attempts_before == 3


def test_expiry_during_an_outage_is_reported_once(records):
    clock, published = Clock(), []
    error = FetchFailed("down", permanent=False)
    refresher = make_refresher(
        ScriptedFetch(credentials(clock, 1, lifetime=10), error, error), clock, published
    )
    refresher.attempt()
    clock.advance(11)
    refresher.attempt()
    refresher.attempt()
    expired = [r for r in records if r.levelno == logging.ERROR]
    assert len(expired) == 1 and "expired" in expired[0].getMessage()


def test_missing_certificate_files_are_awaited_quietly(records):
    clock, published = Clock(), []
    missing = CertificateFilesMissing([Path("/certs/tls.crt")])
    fetch = ScriptedFetch(missing, missing, missing, credentials(clock, 1))
    refresher = make_refresher(fetch, clock, published)
    delays = [refresher.attempt().delay for _ in range(3)]
    assert delays == [CERTIFICATE_POLL_SECONDS] * 3
    waiting = [r for r in records if "waiting for the certificate" in r.getMessage()]
    assert len(waiting) == 1 and waiting[0].missing == [Path("/certs/tls.crt")]
    assert refresher.failures == 0 and not [r for r in records if r.levelno >= logging.WARNING]
    assert refresher.attempt().published


def test_a_publish_failure_is_retried_but_the_credentials_are_kept(records):
    clock = Clock()

    def publish(_credentials):
        raise OSError(28, "No space left on device")

    refresher = Refresher(
        fetch=ScriptedFetch(credentials(clock, 1)), publish=publish, now=clock, rng=random.Random(0)
    )
    attempt = refresher.attempt()
    assert not attempt.published and attempt.delay <= 1 and refresher.current is not None
    assert "No space left on device" in records[-1].getMessage()


def test_an_unexpected_error_is_logged_with_its_traceback_and_retried(records):
    clock, published = Clock(), []
    refresher = make_refresher(ScriptedFetch(KeyError("boom")), clock, published)
    assert refresher.attempt().delay <= 1
    assert any(r.exc_info for r in records)


def test_run_until_published_stops_at_a_permanent_failure():
    clock, published = Clock(), []
    fetch = ScriptedFetch(
        FetchFailed("throttled", permanent=False), FetchFailed("AccessDeniedException", permanent=True)
    )
    stop = _NoWaitEvent()
    assert make_refresher(fetch, clock, published).run_until_published(stop) is False
    assert fetch.calls == 2 and not published


def test_run_until_published_returns_after_the_first_success():
    clock, published = Clock(), []
    fetch = ScriptedFetch(FetchFailed("throttled", permanent=False), credentials(clock, 1))
    assert make_refresher(fetch, clock, published).run_until_published(_NoWaitEvent()) is True
    assert len(published) == 1


def test_run_keeps_refreshing_until_stopped_waking_every_minute_in_between():
    # The refresher now waits in ticks of at most a minute (review finding L6), so the fake event moves
    # the clock on by each wait, and the schedule shows as the sum of the ticks between two fetches.
    clock, published = Clock(), []
    fetch = LiveFetch(clock)
    stop = _NoWaitEvent(clock, stop_after_fetches=(fetch, 3))
    make_refresher(fetch, clock, published).run(stop)
    assert fetch.calls == 3 and len(published) == 3
    assert max(stop.waited) <= refresher_module.MAX_WAIT_SECONDS
    moments = [c.expiration - dt.timedelta(seconds=3600) for c in published]
    assert all(1440 <= (b - a).total_seconds() <= 2160 for a, b in itertools.pairwise(moments))


def test_a_wall_clock_jumped_past_expiry_refreshes_on_the_next_tick():
    """A host suspend stops the monotonic clock the wait runs on, not the wall clock: after waking up, the
    refresher sees the planned refresh (and the expiry) passed and fetches within a minute."""
    clock, published = Clock(), []
    fetch = LiveFetch(clock)
    suspend_after = 2

    class Suspending(_NoWaitEvent):
        def wait(self, timeout=None) -> bool:
            if len(self.waited) == suspend_after:
                # The host sleeps for two hours during this wait: only the wall clock moves.
                clock.advance(2 * 3600)
                self.waited.append(timeout)
                self.jumped_at = len(self.waited)
                return self.is_set()
            return super().wait(timeout)

    stop = Suspending(clock, stop_after_fetches=(fetch, 2))
    make_refresher(fetch, clock, published).run(stop)
    assert fetch.calls == 2, "the tick after the jump refreshed"
    assert len(stop.waited) == stop.jumped_at, "no further wait between waking up and the refresh"
    assert published[1].expiration > published[0].expiration + dt.timedelta(hours=2)


class _NoWaitEvent(threading.Event):
    """An Event whose wait() returns at once, recording the delays; sets itself after `stop_after` waits,
    or once `stop_after_fetches` = (fetch, n) made n calls. With a `clock`, each wait moves it on."""

    def __init__(self, clock: Clock | None = None, stop_after: int | None = None,
                 stop_after_fetches: tuple[LiveFetch, int] | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.waited: list[float] = []
        self.stop_after = stop_after
        self.stop_after_fetches = stop_after_fetches

    def wait(self, timeout=None) -> bool:
        self.waited.append(timeout)
        if self.clock is not None and timeout is not None:
            self.clock.advance(timeout)
        if self.stop_after is not None and len(self.waited) >= self.stop_after:
            self.set()
        return self.is_set()

    def is_set(self) -> bool:
        if self.stop_after_fetches is not None:
            fetch, calls = self.stop_after_fetches
            if fetch.calls >= calls:
                return True
        return super().is_set()
