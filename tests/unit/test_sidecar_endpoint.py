"""The loopback credentials endpoint: token auth, readiness, metrics, and botocore as its client."""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json

import pytest
from botocore.credentials import ContainerProvider
from rolesanywhere_devkit.sidecar import reset_sidecar_logging
from rolesanywhere_protocol.credentials import Credentials
from rolesanywhere_sidecar.endpoint import CredentialsServer, CredentialStore
from rolesanywhere_sidecar.logs import Redactor, configure
from rolesanywhere_sidecar.metrics import Metrics

TOKEN = "s3cr3t-endpoint-token"


class Clock:
    def __init__(self) -> None:
        self.moment = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.moment


def make_credentials(clock: Clock, lifetime: float) -> Credentials:
    return Credentials(
        access_key_id="ASIASERVERTEST",
        secret_access_key="server-secret-key",
        session_token="server-session-token",
        expiration=clock() + dt.timedelta(seconds=lifetime),
        role_arn="arn:aws:iam::123456789012:role/app",
    )


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def server(clock):
    """One server for the module (stopping one takes a poll interval); each test empties its store."""
    instance = CredentialsServer(0, token=TOKEN, store=CredentialStore(), metrics=Metrics(clock), now=clock)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def store(server):
    server.store.set(None)
    return server.store


def get(server: CredentialsServer, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_it_listens_on_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "wrong"}, {"Authorization": TOKEN + "x"}])
def test_credentials_need_the_token(server, store, clock, headers):
    store.set(make_credentials(clock, 3600))
    status, body = get(server, "/v1/credentials", headers)
    assert status == 401
    assert b"server-secret-key" not in body and TOKEN.encode() not in body


def test_credentials_in_the_container_format_with_the_token(server, store, clock):
    store.set(make_credentials(clock, 3600))
    status, body = get(server, "/v1/credentials", {"Authorization": TOKEN})
    assert status == 200
    assert json.loads(body) == {
        "AccessKeyId": "ASIASERVERTEST",
        "SecretAccessKey": "server-secret-key",
        "Token": "server-session-token",
        "Expiration": (clock() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RoleArn": "arn:aws:iam::123456789012:role/app",
    }


def test_no_credentials_or_expired_ones_give_503(server, store, clock):
    assert get(server, "/v1/credentials", {"Authorization": TOKEN})[0] == 503
    store.set(make_credentials(clock, -1))
    status, body = get(server, "/v1/credentials", {"Authorization": TOKEN})
    assert status == 503 and b"expired" in body


def test_health_and_readiness(server, store, clock):
    assert get(server, "/healthz")[0] == 200
    assert get(server, "/readyz")[0] == 503
    store.set(make_credentials(clock, 59))
    assert get(server, "/readyz") == (503, b"credentials valid for less than 60 s\n")
    store.set(make_credentials(clock, 60))
    assert get(server, "/readyz")[0] == 200
    assert get(server, "/nothing")[0] == 404


def test_metrics_are_served_as_prometheus_text(server, store, clock):
    server.metrics.observe_create_session("success", 0.03)
    server.metrics.set_credentials_expiration(clock() + dt.timedelta(seconds=1800))
    status, body = get(server, "/metrics")
    assert status == 200
    text = body.decode()
    assert 'rolesanywhere_sidecar_create_session_total{outcome="success"} 1' in text
    assert "rolesanywhere_sidecar_credentials_expiry_seconds 1800" in text


def test_botocore_container_provider_reads_the_endpoint(server, store, clock, tmp_path):
    """The real SDK code path: AWS_CONTAINER_CREDENTIALS_FULL_URI plus AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE."""
    store.set(make_credentials(clock, 3600))
    (tmp_path / "token").write_text(TOKEN)
    provider = ContainerProvider(
        environ={
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{server.port}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tmp_path / "token"),
        }
    )
    frozen = provider.load().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "ASIASERVERTEST",
        "server-secret-key",
        "server-session-token",
    )


def test_debug_logs_of_requests_hold_neither_token_nor_credentials(server, store, clock):
    stream = io.StringIO()
    configure("json", "debug", stream, Redactor())
    try:
        store.set(make_credentials(clock, 3600))
        get(server, "/v1/credentials", {"Authorization": TOKEN})
        get(server, "/v1/credentials", {"Authorization": "wrong-token"})
        get(server, "/v1/credentials?x=1", {})
    finally:
        reset_sidecar_logging()
    output = stream.getvalue()
    assert output.count('"message": "request"') == 3
    for secret in (TOKEN, "wrong-token", "server-secret-key", "server-session-token"):
        assert secret not in output


def test_without_a_token_the_endpoint_hands_out_no_credentials_but_still_answers_health(clock):
    """Delivery FileOnly: the sidecar runs with --no-credentials-endpoint and so without a token."""
    store = CredentialStore()
    store.set(make_credentials(clock, 3600))
    instance = CredentialsServer(0, token=None, store=store, metrics=Metrics(clock), now=clock)
    instance.start()
    try:
        for headers in ({}, {"Authorization": ""}, {"Authorization": "None"}):
            status, body = get(instance, "/v1/credentials", headers)
            assert status == 404 and b"AWS_SHARED_CREDENTIALS_FILE" in body
            assert b"server-secret-key" not in body
        assert get(instance, "/readyz")[0] == 200
    finally:
        instance.stop()


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), BrokenPipeError(32, "pipe"), ValueError("bad")])
def test_a_failed_request_is_a_log_line_not_a_traceback_on_stderr(server, capsys, caplog, error):
    # socketserver's default handle_error prints a traceback to stderr, which broke the sidecar's
    # one-JSON-object-per-line log when a client went away mid-response.
    caplog.set_level("DEBUG", logger="rolesanywhere_sidecar")
    try:
        raise error
    except (ConnectionError, ValueError):
        server.handle_error(None, ("127.0.0.1", 40000))
    assert capsys.readouterr().err == ""
    (record,) = [r for r in caplog.records if r.name.endswith(".server")]
    assert record.levelname == ("WARNING" if isinstance(error, ValueError) else "DEBUG")
