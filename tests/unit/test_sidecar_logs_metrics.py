"""Log formats, secret redaction and the Prometheus exposition."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from rolesanywhere_devkit.sidecar import reset_sidecar_logging
from rolesanywhere_sidecar.logs import REDACTED, Redactor, configure, get_logger
from rolesanywhere_sidecar.metrics import LATENCY_BUCKETS, Metrics


@pytest.fixture
def configured():
    """Configure the sidecar's logging into a buffer; undo it afterwards."""
    stream = io.StringIO()
    redactor = Redactor()

    def setup(log_format: str, level: str = "info"):
        configure(log_format, level, stream, redactor)
        return stream, redactor

    yield setup
    reset_sidecar_logging()


def test_json_lines_carry_the_message_and_the_fields(configured):
    stream, _ = configured("json")
    get_logger("refresher").info("credentials refreshed", extra={"access_key_id": "ASIA1", "attempt": 2})
    document = json.loads(stream.getvalue())
    assert document["message"] == "credentials refreshed" and document["level"] == "info"
    assert (
        document["logger"] == "refresher"
        and document["attempt"] == 2
        and document["access_key_id"] == "ASIA1"
    )
    assert document["time"].endswith("Z")


def test_text_lines_are_one_line_per_event(configured):
    stream, _ = configured("text")
    get_logger("server").warning("something %s", "happened", extra={"status": 503})
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert " WARNING server: something happened status=503" in line


def test_the_level_filters(configured):
    stream, _ = configured("text", "warning")
    get_logger("x").info("quiet")
    assert stream.getvalue() == ""


def test_registered_secrets_are_redacted_even_inside_exception_text(configured):
    stream, redactor = configured("json", "debug")
    redactor.add("TOPSECRET", "")
    try:
        raise ValueError("server echoed TOPSECRET back")
    except ValueError:
        get_logger("x").exception("failed with TOPSECRET", extra={"field": "TOPSECRET"})
    assert "TOPSECRET" not in stream.getvalue() and REDACTED in stream.getvalue()


def test_the_redactor_forgets_old_secrets_beyond_its_capacity():
    redactor = Redactor(capacity=2)
    redactor.add("one", "two", "three")
    assert redactor.redact("one two three") == f"one {REDACTED} {REDACTED}"


def test_metrics_render_counters_histogram_and_time_relative_gauges():
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    metrics = Metrics(lambda: now)
    metrics.observe_create_session("success", 0.02)
    metrics.observe_create_session("service_error", 0.3)
    metrics.observe_create_session("success", 100.0)
    metrics.set_credentials_expiration(now + dt.timedelta(seconds=90.5))
    metrics.set_certificate_not_after(dt.datetime(2030, 1, 2, tzinfo=dt.UTC))
    lines = metrics.render().splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    assert samples['rolesanywhere_sidecar_create_session_total{outcome="success"}'] == "2"
    assert samples['rolesanywhere_sidecar_create_session_total{outcome="service_error"}'] == "1"
    assert samples['rolesanywhere_sidecar_create_session_total{outcome="transport_error"}'] == "0"
    bucket = "rolesanywhere_sidecar_create_session_duration_seconds_bucket"
    counts = [int(samples[f'{bucket}{{le="{b if b != int(b) else int(b)}"}}']) for b in LATENCY_BUCKETS]
    assert counts == sorted(counts) and counts[0] == 0 and counts[1] == 1 and counts[-1] == 2  # cumulative
    assert samples[f'{bucket}{{le="+Inf"}}'] == "3"
    assert samples["rolesanywhere_sidecar_create_session_duration_seconds_count"] == "3"
    assert samples["rolesanywhere_sidecar_credentials_expiry_seconds"] == "90.5"
    assert samples["rolesanywhere_sidecar_certificate_not_after_timestamp_seconds"] == "1893542400"
    for name in ("create_session_total", "create_session_duration_seconds", "credentials_expiry_seconds"):
        assert any(line.startswith(f"# TYPE rolesanywhere_sidecar_{name} ") for line in lines)


def test_unknown_outcomes_are_refused():
    with pytest.raises(ValueError, match="expected one of success"):
        Metrics(lambda: None).observe_create_session("meh", 1)
