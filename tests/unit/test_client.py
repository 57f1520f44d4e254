"""CreateSessionClient against a scripted loopback service: endpoints, retries, errors, TLS, proxies, timeouts.

The scripted server plays the service's answers (so a 503 or a slow answer can be arranged), and every
request it receives is checked with the emulator's own SigV4-X509 authentication.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from localcluster import pki
from rolesanywhere_devkit.processes import free_port
from rolesanywhere_emulator.authentication import IncomingRequest, authenticate
from rolesanywhere_protocol import (
    ConfigError,
    CreateSessionClient,
    LocalCredentialError,
    RoleSessionNameRefused,
    ServiceError,
    SessionRequest,
)
from rolesanywhere_protocol.client import RETRY_BASE_SECONDS
from rolesanywhere_protocol.identity import X509Identity

TRUST_ANCHOR = "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/ta-1"
PROFILE = "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p-1"
ROLE = "arn:aws:iam::123456789012:role/app"
REQUEST = SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, duration_seconds=1800)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def success_body(expiration: str = "2030-01-01T00:00:00Z") -> dict:
    return {
        "credentialSet": [
            {
                "assumedRoleUser": {
                    "arn": "arn:aws:sts::123456789012:assumed-role/app/1",
                    "assumedRoleId": "AROA:1",
                },
                "credentials": {
                    "accessKeyId": "ASIAEXAMPLE",
                    "secretAccessKey": "secret",
                    "sessionToken": "token",
                    "expiration": expiration,
                },
                "packedPolicySize": 0,
                "roleArn": ROLE,
                "sourceIdentity": "CN=workload",
            }
        ],
        "subjectArn": "arn:aws:rolesanywhere:eu-west-1:123456789012:subject/1",
    }


class ScriptedService:
    """Answers each request with the next scripted (status, body, headers, delay); records what it received."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.script: list[tuple[int, dict, dict, float]] = []
        self.received: list[IncomingRequest] = []
        self.request_lines: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                service.request_lines.append(self.requestline)
                service.received.append(
                    IncomingRequest("POST", parts.path, parts.query, list(self.headers.items()), body)
                )
                status, document, headers, delay = (
                    service.script.pop(0) if service.script else (201, success_body(), {}, 0)
                )
                time.sleep(delay)
                payload = json.dumps(document).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def answer(self, status: int, document: dict, headers: dict | None = None, delay: float = 0.0) -> None:
        self.script.append((status, document, headers or {}, delay))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def identity() -> X509Identity:
    now = utc_now()
    root = pki.issue("Client Test Root", now=now, is_ca=True)
    leaf = pki.issue("client-workload", now=now, issuer=root, key_kind="ec-p256", client=True)
    return X509Identity(certificate=leaf.cert, private_key=leaf.key, source="tls.crt, tls.key")


@pytest.fixture
def service():
    scripted = ScriptedService()
    yield scripted
    scripted.close()


class RecordingSleep:
    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client_for(url: str, **options) -> CreateSessionClient:
    options.setdefault("sleep", RecordingSleep())
    options.setdefault("rng", random.Random(7))
    return CreateSessionClient(url, **options)


def test_returns_credentials_and_sends_a_request_the_emulator_authenticates(service, identity):
    with client_for(service.url) as client:
        credentials = client.create_session(identity, REQUEST)

    assert credentials.access_key_id == "ASIAEXAMPLE"
    assert credentials.session_token == "token"
    assert credentials.expiration == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert credentials.role_arn == ROLE
    (received,) = service.received
    assert received.path == "/sessions"
    assert json.loads(received.body) == {
        "durationSeconds": 1800,
        "profileArn": PROFILE,
        "roleArn": ROLE,
        "trustAnchorArn": TRUST_ANCHOR,
    }
    # region comes from the trust anchor ARN; the emulator's checks accept what the client signed
    authenticated = authenticate(received, region="eu-west-1", now=utc_now())
    assert authenticated.certificate.serial_number == identity.serial_number


def test_role_session_name_is_sent_when_set(service, identity):
    request = SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, role_session_name="build-42")
    with client_for(service.url) as client:
        client.create_session(identity, request)
    assert json.loads(service.received[0].body)["roleSessionName"] == "build-42"


def refusal(service, identity, request) -> ServiceError:
    service.answer(403, {"message": "Access denied"}, {"x-amzn-ErrorType": "AccessDeniedException"})
    with client_for(service.url) as client, pytest.raises(ServiceError) as caught:
        client.create_session(identity, request)
    return caught.value


def test_a_refused_session_name_is_told_apart_by_asking_once_more_without_it(service, identity):
    request = SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, role_session_name="build-42")
    refused = refusal(service, identity, request)  # the next answer (scripted default) accepts
    with client_for(service.url) as client:
        explained = client.explain_refusal(identity, request, refused)

    assert isinstance(explained, RoleSessionNameRefused)
    assert [json.loads(r.body).get("roleSessionName") for r in service.received] == ["build-42", None]
    text = str(explained)
    assert "HTTP 403 AccessDeniedException: Access denied" in text
    assert "role session name 'build-42' is why" in text and "does not accept role session names" in text
    assert "aws rolesanywhere update-profile --profile-id p-1 --accept-role-session-name" in text


def test_a_refusal_that_stands_without_the_session_name_is_left_as_it_is(service, identity):
    request = SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, role_session_name="build-42")
    refused = refusal(service, identity, request)
    service.answer(403, {"message": "Untrusted Signing Certificate"}, {"x-amzn-ErrorType": "AccessDeniedException"})
    with client_for(service.url) as client:
        assert client.explain_refusal(identity, request, refused) is refused
    assert len(service.received) == 2


@pytest.mark.parametrize("named, status", [(False, 403), (True, 503), (True, 400)])
def test_only_an_access_denied_for_a_named_session_costs_a_second_call(service, identity, named, status):
    request = SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, role_session_name="build-42" if named else None)
    error = ServiceError(status, "X", "no", retryable=status >= 500)
    with client_for(service.url) as client:
        assert client.explain_refusal(identity, request, error) is error
    assert service.received == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_throttling_and_server_errors_with_exponential_backoff_and_jitter(service, identity, status):
    service.answer(status, {"message": "slow down"})
    service.answer(status, {"message": "slow down"})
    sleep = RecordingSleep()

    with client_for(service.url, sleep=sleep, rng=random.Random(7), max_attempts=4) as client:
        credentials = client.create_session(identity, REQUEST)

    assert credentials.access_key_id == "ASIAEXAMPLE"
    assert len(service.received) == 3
    expected = random.Random(7)
    assert sleep.delays == [
        expected.uniform(0, RETRY_BASE_SECONDS),
        expected.uniform(0, 2 * RETRY_BASE_SECONDS),
    ]
    # every attempt carries a valid signature of its own
    assert all(authenticate(r, region="eu-west-1", now=utc_now()) for r in service.received)


def test_retry_after_is_honoured_as_a_minimum_wait(service, identity):
    service.answer(429, {"message": "Rate exceeded"}, {"Retry-After": "2"})
    sleep = RecordingSleep()
    with client_for(service.url, sleep=sleep) as client:
        client.create_session(identity, REQUEST)
    assert sleep.delays == [2.0]


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "AccessDeniedException"), (400, "ValidationException"), (404, "ResourceNotFoundException")],
)
def test_does_not_retry_client_errors_and_reports_the_service_message_and_certificate(
    service, identity, status, code
):
    service.answer(
        status, {"message": "Untrusted Signing Certificate"}, {"x-amzn-ErrorType": f"{code}:http://x/"}
    )
    sleep = RecordingSleep()

    with client_for(service.url, sleep=sleep) as client, pytest.raises(ServiceError) as caught:
        client.create_session(identity, REQUEST)

    error = caught.value
    assert (error.status, error.code, error.message, error.retryable) == (
        status,
        code,
        "Untrusted Signing Certificate",
        False,
    )
    assert len(service.received) == 1 and sleep.delays == []
    text = str(error)
    assert f"HTTP {status} {code}: Untrusted Signing Certificate" in text
    assert f"certificate serial {identity.serial_number}" in text and "subject CN=client-workload" in text
    assert service.url in text


def test_gives_up_after_max_attempts_with_a_retryable_error(service, identity):
    for _ in range(3):
        service.answer(503, {"message": "Service Unavailable"})
    with client_for(service.url, max_attempts=3) as client, pytest.raises(ServiceError) as caught:
        client.create_session(identity, REQUEST)
    assert caught.value.retryable and caught.value.attempts == 3
    assert "gave up after 3 attempts" in str(caught.value)
    assert len(service.received) == 3


def test_error_without_json_body_keeps_status_and_text(service, identity):
    service.script.append((502, {"not": "json"}, {"Content-Type": "text/html"}, 0))
    with client_for(service.url, max_attempts=1) as client, pytest.raises(ServiceError) as caught:
        client.create_session(identity, REQUEST)
    assert caught.value.status == 502 and caught.value.code == "HTTP502"


def test_connection_refused_is_retried_then_reported(identity):
    port = free_port()  # a port nobody listens on
    sleep = RecordingSleep()
    with (
        client_for(f"http://127.0.0.1:{port}", sleep=sleep, max_attempts=3) as client,
        pytest.raises(ServiceError) as caught,
    ):
        client.create_session(identity, REQUEST)
    assert caught.value.status == 0 and caught.value.code == "ConnectError" and caught.value.retryable
    assert len(sleep.delays) == 2


def test_read_timeout_is_a_retryable_error(service, identity):
    service.answer(201, success_body(), delay=1.0)
    with (
        client_for(service.url, timeout=0.2, max_attempts=1) as client,
        pytest.raises(ServiceError) as caught,
    ):
        client.create_session(identity, REQUEST)
    assert caught.value.code == "ReadTimeout" and caught.value.retryable


def test_malformed_success_body_is_a_retryable_error(service, identity):
    service.answer(201, {"credentialSet": []})
    with (
        client_for(service.url, max_attempts=1) as client,
        pytest.raises(ServiceError, match="credentialSet"),
    ):
        client.create_session(identity, REQUEST)


def test_expired_certificate_fails_before_any_request(service, identity):
    later = identity.not_after + dt.timedelta(minutes=1)
    with client_for(service.url) as client, pytest.raises(LocalCredentialError, match="expired at"):
        client.create_session(identity, REQUEST, now=lambda: later)
    assert service.received == []


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, duration_seconds=899),
            "out of range: expected whole seconds",
        ),
        (SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, duration_seconds=43201), "out of range"),
        (
            SessionRequest("arn:aws:rolesanywhere:eu-west-1:1:ta", PROFILE, ROLE),
            "trust anchor ARN .* not a valid ARN",
        ),
        (SessionRequest(TRUST_ANCHOR, PROFILE, "arn:aws:iam::123456789012:user/u"), "not a role ARN"),
        (
            SessionRequest(TRUST_ANCHOR, PROFILE.replace("eu-west-1", "us-east-1"), ROLE),
            "trust anchor .* is in eu-west-1 but profile .* is in us-east-1",
        ),
        (SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, role_session_name="x"), "expected 2 to 64 of the characters"),
    ],
    ids=["duration-low", "duration-high", "bad-arn", "not-a-role", "region-mismatch", "session-name"],
)
def test_invalid_requests_fail_before_any_request(service, identity, request_, message):
    with client_for(service.url) as client, pytest.raises(ConfigError, match=message):
        client.create_session(identity, request_)
    assert service.received == []


@pytest.mark.parametrize(
    ("region", "fips", "expected"),
    [
        (None, False, "https://rolesanywhere.eu-west-1.amazonaws.com/sessions"),
        ("us-east-2", True, "https://rolesanywhere-fips.us-east-2.amazonaws.com/sessions"),
        ("us-gov-west-1", True, "https://rolesanywhere-fips.us-gov-west-1.amazonaws.com/sessions"),
        ("cn-north-1", False, "https://rolesanywhere.cn-north-1.amazonaws.com.cn/sessions"),
    ],
)
def test_endpoint_from_region(region, fips, expected):
    with CreateSessionClient(region=region, fips=fips) as client:
        assert client.url_for(REQUEST) == expected


def test_fips_endpoint_outside_fips_regions_is_a_config_error():
    with (
        CreateSessionClient(fips=True) as client,
        pytest.raises(ConfigError, match="no FIPS endpoint in region"),
    ):
        client.url_for(REQUEST)


def test_explicit_endpoint_wins_and_may_include_the_path():
    with CreateSessionClient("http://127.0.0.1:9/sessions", fips=True) as client:
        assert client.url_for(REQUEST) == "http://127.0.0.1:9/sessions"


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    now = utc_now()
    ca = pki.issue("Client TLS Test CA", now=now, is_ca=True)
    server = pki.issue("127.0.0.1", now=now, issuer=ca, server=True, ip_addresses=("127.0.0.1",))
    cert, key = server.write(directory, "server")
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.cert_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, ca_path


def test_custom_ca_bundle_is_trusted_and_the_system_store_is_not_used_for_it(tls_material, identity):
    context, ca_path = tls_material
    service = ScriptedService(tls=context)
    try:
        with client_for(service.url, ca_bundle=ca_path) as client:
            assert client.create_session(identity, REQUEST).access_key_id == "ASIAEXAMPLE"
        with client_for(service.url, max_attempts=3) as client, pytest.raises(ServiceError) as caught:
            client.create_session(identity, REQUEST)
        # an untrusted server certificate is not retried: it will not become trusted
        assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message and not caught.value.retryable
        with client_for(service.url, verify=False) as client:
            assert client.create_session(identity, REQUEST).access_key_id == "ASIAEXAMPLE"
    finally:
        service.close()


def test_unreadable_ca_bundle_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot use CA bundle .*expected a readable PEM file"):
        CreateSessionClient(ca_bundle=tmp_path / "absent.pem")


def test_proxy_environment_is_used_only_when_asked(service, identity, monkeypatch):
    # the scripted service doubles as the proxy: a proxied request line carries the absolute URL
    monkeypatch.setenv("HTTP_PROXY", service.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    target = "http://rolesanywhere.invalid"

    with client_for(target, use_proxy_env=True) as client:
        client.create_session(identity, REQUEST)
    assert service.request_lines[-1].startswith("POST http://rolesanywhere.invalid/sessions ")

    with client_for(target, use_proxy_env=False, max_attempts=1) as client, pytest.raises(ServiceError):
        client.create_session(identity, REQUEST)  # direct: the .invalid host does not resolve
    assert len(service.request_lines) == 1
