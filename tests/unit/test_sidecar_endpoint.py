"""The sidecar's listeners: the loopback credentials endpoint (token auth, readiness, metrics, botocore as its
client) and the health listener on every address (health and metrics only, never credentials)."""

from __future__ import annotations

import datetime as dt
import errno
import http.client
import io
import json
import re
import socket

import pytest
from botocore.credentials import ContainerProvider
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_devkit.sidecar import reset_sidecar_logging
from rolesanywhere_protocol.credentials import Credentials
from rolesanywhere_sidecar import endpoint
from rolesanywhere_sidecar.endpoint import CredentialStore, EndpointServer, credentials_server, health_server
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
    instance = credentials_server(0, token=TOKEN, store=CredentialStore(), metrics=Metrics(clock), now=clock)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def store(server):
    server.store.set(None)
    return server.store


def get(server: EndpointServer, path: str, headers: dict | None = None, host: str = "127.0.0.1") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, server.port, timeout=5)
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
    instance = credentials_server(0, token=None, store=store, metrics=Metrics(clock), now=clock)
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


# --- The health listener on every address of the pod ------------------------------------------------------


@pytest.fixture(scope="module")
def health(server, clock):
    """The health listener beside the module's loopback endpoint, sharing its store (as `serve` wires them)."""
    instance = health_server(0, store=server.store, metrics=server.metrics, now=clock)
    instance.start()
    yield instance
    instance.stop()


def test_the_health_listener_is_on_every_address_dual_stack_where_there_is_ipv6(health, store, clock):
    store.set(make_credentials(clock, 3600))
    host = health.server_address[0]
    assert host in ("::", "0.0.0.0")
    hosts = ["127.0.0.1", *(["::1"] if host == "::" else [])]
    for address in hosts:
        assert get(health, "/healthz", host=address)[0] == 200
        assert get(health, "/readyz", host=address)[0] == 200


def test_the_health_listener_answers_readiness_as_the_loopback_does(health, store, clock):
    assert get(health, "/readyz")[0] == 503
    store.set(make_credentials(clock, 59))
    assert get(health, "/readyz") == (503, b"credentials valid for less than 60 s\n")
    store.set(make_credentials(clock, 3600))
    assert get(health, "/readyz") == (200, b"ok\n")
    status, body = get(health, "/metrics")
    assert status == 200 and b"rolesanywhere_sidecar_create_session_total" in body


@pytest.mark.parametrize(
    "path", ["/v1/credentials", "/v1/credentials?x=1", "/v1/credentials/", "//v1/credentials", "/v1/%63redentials",
             "http://127.0.0.1/v1/credentials", "/", "/nothing"],
)
def test_the_health_listener_never_hands_out_credentials_even_to_the_token(server, health, store, clock, path):
    store.set(make_credentials(clock, 3600))
    assert get(server, "/v1/credentials", {"Authorization": TOKEN})[0] == 200  # the loopback endpoint does
    for headers in ({"Authorization": TOKEN}, {"Authorization": TOKEN, "Host": "127.0.0.1"}, {}):
        status, body = get(health, path, headers)
        assert status == 404
        assert b"server-secret-key" not in body and b"server-session-token" not in body
        assert json.loads(body) == {"message": "no such path; this port serves /healthz, /readyz, /metrics"}


def test_without_ipv6_the_health_listener_falls_back_to_every_ipv4_address(monkeypatch, clock):
    real_socket = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args, **kwargs):
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real_socket(family, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", no_ipv6)
    instance = health_server(0, store=CredentialStore(), metrics=Metrics(clock), now=clock)
    monkeypatch.undo()
    try:
        assert instance.server_address[0] == "0.0.0.0"
        instance.start()
        assert get(instance, "/healthz")[0] == 200
    finally:
        instance.stop()


def test_a_taken_health_port_is_an_error_naming_it_not_a_fallback(clock):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as raised:
            health_server(port, store=CredentialStore(), metrics=Metrics(clock), now=clock)
    assert raised.value.errno == errno.EADDRINUSE
    assert re.search(rf"health endpoint: cannot listen on (\[::\]|0\.0\.0\.0):{port}: ", str(raised.value))


def test_the_health_listener_serves_a_bounded_number_of_connections_at_once(clock):
    """It is reachable from the pod network: idle connections beyond the bound are closed, not given threads."""
    instance = health_server(0, store=CredentialStore(), metrics=Metrics(clock), now=clock)
    instance.start()
    idle = [socket.create_connection(("127.0.0.1", instance.port)) for _ in range(endpoint.HEALTH_MAX_CONNECTIONS)]
    try:
        # Accepted in order, so this one comes after every idle one.
        assert _status_or_none(instance) is None
    finally:
        for connection in idle:
            connection.close()
    try:
        assert wait_for(lambda: _status_or_none(instance), timeout=10, what="a free slot") == 200
    finally:
        instance.stop()


def _status_or_none(instance: EndpointServer) -> int | None:
    try:
        return get(instance, "/healthz")[0]
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return None


def test_a_server_is_made_only_for_paths_it_has_routes_for(clock):
    with pytest.raises(ValueError, match="no route for /v2/credentials"):
        EndpointServer(0, token=None, store=CredentialStore(), metrics=Metrics(clock), now=clock,
                       paths=("/healthz", "/v2/credentials"))
