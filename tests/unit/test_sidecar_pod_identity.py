"""The sidecar's side of per-pod identity (pod_identity.py) against a real HTTPS server playing the
operator's identity endpoint: it decides the subject and SANs, answers 409 with them, signs certificates
for the CSR's key; it can refuse (403) or be down."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from localcluster import pki
from rolesanywhere_protocol.csr import certification_request_info
from rolesanywhere_protocol.pod_identity import (
    RESIGN_STATUS,
    issued_body,
    message_body,
    parse_request,
    resign_body,
)
from rolesanywhere_sidecar.pod_identity import (
    IdentityClient,
    IdentityError,
    IdentityKeeper,
    generate_key,
    renew_delay,
    uris_of,
)
from rolesanywhere_sidecar.refresher import CertificateNotIssued

NOW = dt.datetime.now(dt.UTC)
TOKEN = "pod-token-7f3a"
SUBJECT = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shop"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "s3-reader.shop")])
URI = "spiffe://cluster.local/ns/shop/sa/default/pod/reports-1"


class Operator:
    """The identity endpoint's behaviour, switchable by the test: `refuse` answers 403, `other_key` a 409
    naming another key; `requests` counts POSTs."""

    def __init__(self, ca: pki.Issued, lifetime: dt.timedelta) -> None:
        self.ca, self.lifetime = ca, lifetime
        self.refuse: str | None = None
        self.other_key = False
        self.requests = 0
        self.issued_keys: list[bytes] = []

    def answer(self, authorization: str, body: bytes) -> tuple[int, bytes]:
        self.requests += 1
        if authorization != f"Bearer {TOKEN}":
            return 401, message_body("no valid token")
        if self.refuse:
            return 403, message_body(self.refuse)
        csr = parse_request(body)
        public_key = (ec.generate_private_key(ec.SECP256R1()).public_key() if self.other_key
                      else csr.public_key())
        decided = certification_request_info(SUBJECT, [URI], public_key)  # type: ignore[arg-type]
        if csr.tbs_certrequest_bytes != decided or not csr.is_signature_valid:
            return RESIGN_STATUS, resign_body("sign this", decided)
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.ca.cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(seconds=1)).not_valid_after(now + self.lifetime)
            .add_extension(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, critical=False)
            .sign(self.ca.key, hashes.SHA256())
        )
        self.issued_keys.append(csr.public_key().public_bytes(serialization.Encoding.DER,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
        return 200, issued_body(certificate.public_bytes(serialization.Encoding.PEM).decode(), "")


@pytest.fixture
def endpoint(tmp_path):
    """(operator, client): a real HTTPS server on the loopback and an IdentityClient trusting it."""
    ca = pki.issue("identity-ca", now=NOW, is_ca=True)
    serving = pki.issue("127.0.0.1", now=NOW, issuer=ca, server=True, ip_addresses=("127.0.0.1",))
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem())
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "token").write_text(TOKEN + "\n")
    operator = Operator(ca, lifetime=dt.timedelta(minutes=30))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer = operator.answer(self.headers.get("Authorization", ""), body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/pod-identity"
    client = IdentityClient(url, token_file=tmp_path / "token", ca_bundle=tmp_path / "ca.crt", timeout=5)
    yield operator, client, server
    server.shutdown()
    server.server_close()


def keeper_of(client: IdentityClient, **kwargs) -> IdentityKeeper:
    return IdentityKeeper(client, key_algorithm="ecdsa-p256", now=lambda: dt.datetime.now(dt.UTC),
                          rng=random.Random(7), **kwargs)


def test_the_first_certificate_takes_two_round_trips_and_has_the_operators_subject(endpoint):
    operator, client, _ = endpoint
    key = generate_key("ecdsa-p256")
    identity = client.issue(key)
    assert operator.requests == 2  # a CSR with no subject, then the operator's info signed
    assert identity.certificate.subject == SUBJECT and uris_of(identity.certificate) == [URI]
    assert identity.private_key is key


def test_a_renewal_asks_for_the_same_names_with_a_new_key_in_one_round_trip(endpoint):
    operator, client, _ = endpoint
    keeper = keeper_of(client)
    keeper.attempt()
    first = keeper.current()
    before = operator.requests
    keeper.attempt()
    renewed = keeper.current()
    assert operator.requests == before + 1
    assert renewed.serial_number != first.serial_number
    assert renewed.certificate.subject == first.certificate.subject
    assert len(set(operator.issued_keys)) == 2  # a new key for each certificate


@pytest.mark.parametrize("algorithm", ["ecdsa-p384", "rsa-2048"])
def test_other_key_algorithms(endpoint, algorithm):
    _, client, _ = endpoint
    key = generate_key(algorithm)
    assert client.issue(key).certificate.public_key() == key.public_key()


def test_nothing_is_served_before_the_first_certificate(endpoint):
    _, client, _ = endpoint
    with pytest.raises(CertificateNotIssued, match="waiting for a certificate from the identity endpoint"):
        keeper_of(client).current()


def test_a_refusal_is_logged_with_the_operators_reason_and_the_current_certificate_stays(endpoint, caplog):
    operator, client, _ = endpoint
    keeper = keeper_of(client)
    keeper.attempt()
    current = keeper.current()
    operator.refuse = "pod shop/reports-1 was not injected by the operator"
    with caplog.at_level(logging.WARNING):
        delay = keeper.attempt()
    assert keeper.current() is current and keeper.failures == 1
    assert 0.5 <= delay <= 1.0  # the first retry: backoff, not the renewal schedule
    (record,) = [r for r in caplog.records if r.getMessage().startswith("renewing the certificate failed")]
    assert "answered 403: pod shop/reports-1 was not injected by the operator" in record.getMessage()
    assert "current certificate" in record.__dict__["using"]
    operator.refuse = None
    keeper.attempt()
    assert keeper.current().serial_number != current.serial_number and keeper.failures == 0


def test_a_first_refusal_is_an_error(endpoint, caplog):
    operator, client, _ = endpoint
    operator.refuse = "the token is not meant for audience rolesanywhere.dev/identity"
    with caplog.at_level(logging.ERROR):
        keeper_of(client).attempt()
    assert any(r.levelno == logging.ERROR and "not meant for audience" in r.getMessage() for r in caplog.records)


def test_while_the_operator_is_down_the_certificate_is_kept_and_renewal_resumes(endpoint, tmp_path):
    _, client, _ = endpoint
    keeper = keeper_of(client)
    keeper.attempt()
    current = keeper.current()
    down = IdentityClient("https://127.0.0.1:9/pod-identity", token_file=tmp_path / "token",
                          ca_bundle=tmp_path / "ca.crt", timeout=2)
    keeper._client = down  # the same keeper, its endpoint unreachable
    keeper.attempt()
    keeper.attempt()
    assert keeper.current() is current and keeper.failures == 2
    keeper._client = client
    keeper.attempt()
    assert keeper.current().serial_number != current.serial_number


def test_an_info_naming_another_key_is_refused(endpoint):
    operator, client, _ = endpoint
    operator.other_key = True
    with pytest.raises(IdentityError, match="names another public key"):
        client.issue(generate_key("ecdsa-p256"))


def test_the_token_is_read_for_every_request_and_a_missing_one_is_named(endpoint, tmp_path):
    _, client, _ = endpoint
    (tmp_path / "token").write_text("rotated-but-wrong")
    with pytest.raises(IdentityError, match="answered 401: no valid token"):
        client.issue(generate_key("ecdsa-p256"))
    (tmp_path / "token").unlink()
    with pytest.raises(IdentityError, match=f"cannot read the service-account token {tmp_path / 'token'}"):
        client.issue(generate_key("ecdsa-p256"))


def test_renewal_comes_at_about_two_thirds_of_the_lifetime():
    key = generate_key("ecdsa-p256")
    ca = pki.issue("ca", now=NOW, is_ca=True)
    leaf = pki.issue("leaf", now=NOW, issuer=ca, key=key, valid_for=dt.timedelta(hours=24), not_before=NOW)
    from rolesanywhere_protocol.identity import X509Identity

    identity = X509Identity(certificate=leaf.cert, private_key=key)
    rng = random.Random(3)
    delays = [renew_delay(identity, NOW, fraction=0.67, rng=rng) / 3600 for _ in range(200)]
    assert 24 * 0.57 <= min(delays) < max(delays) <= 24 * 0.77
    assert len({round(d, 2) for d in delays}) > 100  # jittered


def test_the_key_never_reaches_a_file_or_the_log(endpoint, tmp_path, caplog):
    _, client, _ = endpoint
    keeper = keeper_of(client)
    with caplog.at_level(logging.DEBUG):
        keeper.attempt()
    pem = keeper.current().private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    body = b"".join(line for line in pem.splitlines() if b"-----" not in line)
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert body.decode()[40:100] not in logged and "PRIVATE KEY" not in logged
    assert TOKEN not in logged
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or body[40:100] not in path.read_bytes(), path


def test_keeper_thread_stops_when_asked(endpoint):
    _, client, _ = endpoint
    stop = threading.Event()
    thread = keeper_of(client).start(stop)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()

