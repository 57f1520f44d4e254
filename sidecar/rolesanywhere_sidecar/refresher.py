"""When to fetch credentials, and what to do when fetching fails.

Schedule: after `refresh_fraction` of a session's lifetime, plus or minus 10% of the lifetime drawn
from an injected random generator, so pods started together spread their calls; but never later than
SDK_REFRESH_MARGIN_SECONDS before expiry. The SDKs refresh from the endpoint once their copy has less
than 15 minutes left (advisory) and block every call on a refresh below 10 minutes (botocore's
mandatory window): credentials refreshed later than 10 minutes before expiry would make each call of
a short session wait on the endpoint, and be handed the same old credentials. A 3600 s session is
refreshed after 1440 to 2160 s; a 900 s session (the service's minimum) after 192 to 240 s, so SDKs
always hold credentials with at least 11 minutes left. The schedule is a point in wall-clock time:
the wait wakes at least every MAX_WAIT_SECONDS to compare it with the injected clock, because a
monotonic wait does not advance while the host is suspended (edge and laptop nodes), and a wait
across a suspend would otherwise end late by the time asleep, serving expired credentials meanwhile.

Failures: exponential backoff with jitter, never longer than a quarter of the time left on the last
good credentials (so several retries happen before they expire), which keep being served meanwhile.
Each failed attempt is logged once, with the service's message. Nothing here gives up: a missing
trust anchor or a certificate that cert-manager has not renewed yet can be fixed while we wait.

The fetch function raises `CertificateFilesMissing` while the mounted certificate is not there yet
(polled quietly) and `FetchFailed` for everything else that went wrong.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logs import get_logger

if TYPE_CHECKING:
    from rolesanywhere_protocol.credentials import Credentials

JITTER_OF_LIFETIME = 0.10  # plus or minus this fraction of the lifetime
MIN_REFRESH_SECONDS = 1.0  # floor for sessions that arrive (nearly) expired, e.g. with a skewed clock
#: Refresh at least this long before expiry: botocore's mandatory refresh window (600 s) plus a minute,
#: so no SDK call ever waits on a refresh that would hand it the old credentials again.
SDK_REFRESH_MARGIN_SECONDS = 660.0
#: Credentials that arrive with less than the margin left (a clock skewed by minutes) are refreshed no
#: sooner than this, never in a loop; their SDK clients refresh as often as the SDK does anyway.
MIN_EARLY_REFRESH_SECONDS = 10.0
#: The longest single wait: the wall clock is compared with the planned refresh at least this often.
MAX_WAIT_SECONDS = 60.0
BACKOFF_BASE_SECONDS = 1.0  # first retry after 0.5 to 1 s
BACKOFF_CAP_SECONDS = 120.0  # retries never wait longer than this
THROTTLED_BACKOFF_CAP_SECONDS = 16.0  # nor, after a 429, longer than this
CERTIFICATE_POLL_SECONDS = 1.0  # how often to look for certificate files that are not there yet

log = get_logger("refresher")


class CertificateFilesMissing(Exception):
    """The certificate (or key, intermediates, passphrase) file is not there yet: wait, do not fail."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__("waiting for " + ", ".join(str(p) for p in paths))
        self.paths = list(paths)


class CertificateNotIssued(Exception):
    """Per-pod identity: the identity endpoint has not issued the first certificate yet (pod_identity.py)."""


class FetchFailed(Exception):
    """A fetch went wrong. `permanent` means retrying cannot help until something outside changes;
    `throttled` that the service refused it for its request quota (429), which refills within seconds."""

    def __init__(
        self, message: str, *, permanent: bool, throttled: bool = False, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.throttled = throttled
        self.fields = fields or {}


def refresh_delay(lifetime_seconds: float, *, fraction: float, rng: random.Random) -> float:
    """Seconds to wait before refreshing credentials that have `lifetime_seconds` left."""
    jitter = rng.uniform(-JITTER_OF_LIFETIME, JITTER_OF_LIFETIME)
    share = min(max(fraction + jitter, 0.05), 0.95)  # stay inside the lifetime whatever the fraction
    # The same draw spreads the SDK-safe deadline over its last fifth (80 to 100 % of it), so pods
    # started together still spread their calls when every one of them is held to the deadline.
    sdk_safe = (lifetime_seconds - SDK_REFRESH_MARGIN_SECONDS) * (1 - JITTER_OF_LIFETIME + jitter)
    delay = min(lifetime_seconds * share, max(sdk_safe, MIN_EARLY_REFRESH_SECONDS))
    return max(MIN_REFRESH_SECONDS, delay)


def backoff_delay(
    failures: int, *, remaining_seconds: float | None, rng: random.Random, throttled: bool = False
) -> float:
    """Seconds to wait after the `failures`-th consecutive failure (1, 2, ...).

    `remaining_seconds` is the time left on the last good credentials, None when there are none.
    A throttled failure waits at most THROTTLED_BACKOFF_CAP_SECONDS: the quota refills every second, and
    a herd that backs off as far as from an outage leaves it idle (bench figure 7).
    """
    cap = THROTTLED_BACKOFF_CAP_SECONDS if throttled else BACKOFF_CAP_SECONDS
    ceiling = min(cap, BACKOFF_BASE_SECONDS * 2 ** min(failures - 1, 32))
    if remaining_seconds is not None and remaining_seconds > 0:
        ceiling = min(ceiling, max(BACKOFF_BASE_SECONDS, remaining_seconds / 4))
    # "Equal jitter": spread over the upper half, so a retry never comes right away.
    return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: seconds until the next one, whether it published, whether it failed for good."""

    delay: float
    published: bool = False
    permanent_failure: bool = False


class Refresher:
    """Fetches credentials on schedule and hands every new set to `publish`.

    `fetch()` returns (credentials, log fields such as the certificate serial); `publish(credentials)`
    makes them visible (endpoint, files). Clock, randomness and waiting are passed in.
    """

    def __init__(
        self,
        *,
        fetch: Callable[[], tuple[Any, dict[str, Any]]],
        publish: Callable[[Any], None],
        now: Callable[[], dt.datetime],
        rng: random.Random,
        refresh_fraction: float = 0.5,
    ) -> None:
        self._fetch = fetch
        self._publish = publish
        self._now = now
        self._rng = rng
        self._refresh_fraction = refresh_fraction
        self.current: Credentials | None = None  # last good credentials
        self.failures = 0  # consecutive failed attempts
        self._waiting_for: list[Path] | None = None
        self._expiry_reported = False

    def _remaining_seconds(self) -> float | None:
        return None if self.current is None else (self.current.expiration - self._now()).total_seconds()

    def attempt(self) -> Attempt:
        """Fetch and publish once; never raises for a failed fetch."""
        try:
            credentials, fields = self._fetch()
        except CertificateFilesMissing as missing:
            if missing.paths != self._waiting_for:
                log.info("waiting for the certificate files to appear", extra={"missing": missing.paths})
                self._waiting_for = missing.paths
            return Attempt(delay=CERTIFICATE_POLL_SECONDS)
        except CertificateNotIssued:
            return Attempt(delay=CERTIFICATE_POLL_SECONDS)  # the identity keeper logs its own attempts
        except FetchFailed as failure:
            return self._failed(str(failure), failure.fields, permanent=failure.permanent, throttled=failure.throttled)
        except Exception as error:  # a bug: log it with its traceback, and keep going
            log.exception("unexpected error while fetching credentials")
            return self._failed(f"{type(error).__name__}: {error}", {}, permanent=False)
        self._waiting_for = None
        try:
            self._publish(credentials)
        except OSError as error:
            self.current = credentials  # the endpoint already serves them
            return self._failed(f"could not write the credentials files: {error}", {}, permanent=False)
        recovered_after, self.failures, self.current = self.failures, 0, credentials
        self._expiry_reported = False
        lifetime = (credentials.expiration - self._now()).total_seconds()
        delay = refresh_delay(lifetime, fraction=self._refresh_fraction, rng=self._rng)
        extra = {
            **fields,
            "access_key_id": credentials.access_key_id,
            "expiration": credentials.expiration.isoformat(),
            "next_refresh_in_seconds": round(delay, 3),
        }
        if recovered_after:
            extra["failed_attempts_before"] = recovered_after
        log.info("credentials refreshed", extra=extra)
        return Attempt(delay=delay, published=True)

    def _failed(self, message: str, fields: dict[str, Any], *, permanent: bool, throttled: bool = False) -> Attempt:
        self.failures += 1
        remaining = self._remaining_seconds()
        delay = backoff_delay(self.failures, remaining_seconds=remaining, rng=self._rng, throttled=throttled)
        extra = {**fields, "attempt": self.failures, "retry_in_seconds": round(delay, 3)}
        if self.current is None:
            extra["serving"] = "nothing yet"
        elif remaining is not None and remaining > 0:
            extra["serving"] = f"last good credentials, valid until {self.current.expiration.isoformat()}"
        else:
            extra["serving"] = (
                f"nothing: the last credentials expired at {self.current.expiration.isoformat()}"
            )
        log.warning("fetching credentials failed: %s", message, extra=extra)
        if remaining is not None and remaining <= 0 and not self._expiry_reported:
            self._expiry_reported = True
            log.error("the served credentials have expired; clients get errors until a refresh succeeds")
        return Attempt(delay=delay, permanent_failure=permanent)

    def run(self, stop: threading.Event) -> None:
        """Keep credentials fresh until `stop` is set."""
        while not stop.is_set():
            self.wait_until(self._now() + dt.timedelta(seconds=self.attempt().delay), stop)

    def wait_until(self, due: dt.datetime, stop: threading.Event) -> None:
        """Return at `due` by the injected wall clock (or once `stop` is set), waking at least every
        MAX_WAIT_SECONDS: after a host suspend it returns within a minute of waking up."""
        while not stop.is_set():
            remaining = (due - self._now()).total_seconds()
            if remaining <= 0:
                return
            stop.wait(min(remaining, MAX_WAIT_SECONDS))

    def run_until_published(self, stop: threading.Event) -> bool:
        """Retry until credentials are published (True), a permanent failure or `stop` (False)."""
        while not stop.is_set():
            attempt = self.attempt()
            if attempt.published:
                return True
            if attempt.permanent_failure:
                return False
            stop.wait(attempt.delay)
        return False
