"""The sidecar's Prometheus metrics, rendered in the text exposition format (version 0.0.4).

Small enough to write by hand, which keeps a client library out of the sidecar's start-up.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

PREFIX = "rolesanywhere_sidecar"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# CreateSession normally takes tens of milliseconds; the upper buckets catch timeouts.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Outcomes of one CreateSession attempt, always exported so rates start from zero.
OUTCOMES = ("success", "service_error", "local_error", "transport_error")


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{int(value)}"


class Metrics:
    """Thread-safe counters and gauges; `render` computes time-relative gauges at scrape time."""

    def __init__(self, now: Callable[[], dt.datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._calls = dict.fromkeys(OUTCOMES, 0)
        self._bucket_counts = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._expiration: dt.datetime | None = None
        self._certificate_not_after: dt.datetime | None = None

    def observe_create_session(self, outcome: str, seconds: float) -> None:
        if outcome not in self._calls:
            raise ValueError(
                f"unknown CreateSession outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}"
            )
        with self._lock:
            self._calls[outcome] += 1
            self._latency_sum += seconds
            self._latency_count += 1
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self._bucket_counts[index] += 1

    def set_credentials_expiration(self, expiration: dt.datetime) -> None:
        with self._lock:
            self._expiration = expiration

    def set_certificate_not_after(self, not_after: dt.datetime) -> None:
        with self._lock:
            self._certificate_not_after = not_after

    def render(self) -> str:
        now = self._now()
        with self._lock:
            lines = [
                f"# HELP {PREFIX}_create_session_total CreateSession calls by outcome.",
                f"# TYPE {PREFIX}_create_session_total counter",
            ]
            lines += [f'{PREFIX}_create_session_total{{outcome="{o}"}} {n}' for o, n in self._calls.items()]
            name = f"{PREFIX}_create_session_duration_seconds"
            lines += [f"# HELP {name} CreateSession latency, failures included.", f"# TYPE {name} histogram"]
            lines += [
                f'{name}_bucket{{le="{_number(bound)}"}} {count}'
                for bound, count in zip(LATENCY_BUCKETS, self._bucket_counts, strict=True)
            ]
            lines += [
                f'{name}_bucket{{le="+Inf"}} {self._latency_count}',
                f"{name}_sum {_number(self._latency_sum)}",
                f"{name}_count {self._latency_count}",
            ]
            if self._expiration is not None:
                remaining = round((self._expiration - now).total_seconds(), 3)
                lines += _gauge("credentials_expiry_seconds",
                                "Seconds until the served credentials expire (negative once expired).", remaining)
            if self._certificate_not_after is not None:
                lines += _gauge("certificate_not_after_timestamp_seconds",
                                "notAfter of the certificate last used, as a Unix time.",
                                self._certificate_not_after.timestamp())
        return "\n".join(lines) + "\n"


def _gauge(suffix: str, help_text: str, value: float) -> list[str]:
    name = f"{PREFIX}_{suffix}"
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_number(value)}"]
