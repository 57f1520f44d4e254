"""The identity exchange's bodies (rolesanywhere_protocol.pod_identity): each one parses back to what was
put in, and a body that is not what the protocol says is refused naming the field."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from localcluster import pki
from rolesanywhere_protocol.pod_identity import (
    ExchangeError,
    issued_body,
    message_body,
    parse_issued,
    parse_message,
    parse_request,
    parse_resign,
    request_body,
    resign_body,
)

NOW = dt.datetime.now(dt.UTC)


def test_each_body_parses_back():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    assert parse_request(request_body(csr)) == csr
    assert parse_resign(resign_body("sign this", b"\x30\x03\x02\x01\x00")) == b"\x30\x03\x02\x01\x00"
    assert parse_message(message_body("refused: no token")) == "refused: no token"
    ca = pki.issue("ca", now=NOW, is_ca=True)
    intermediate = pki.issue("intermediate", now=NOW, issuer=ca, is_ca=True)
    leaf = pki.issue("leaf", now=NOW, issuer=intermediate)
    issued = parse_issued(issued_body(leaf.cert_pem.decode(), intermediate.cert_pem.decode()))
    assert issued.certificate == leaf.cert and issued.chain == [intermediate.cert]
    # cert-manager may put the chain after the leaf in the certificate field itself.
    bundled = parse_issued(issued_body((leaf.cert_pem + intermediate.cert_pem).decode(), ""))
    assert bundled.certificate == leaf.cert and bundled.chain == [intermediate.cert]
    assert leaf.cert.public_bytes(serialization.Encoding.PEM) == leaf.cert_pem


@pytest.mark.parametrize(
    ("parse", "body", "message"),
    [
        (parse_request, b"not json", "request: expected a JSON object"),
        (parse_request, b"[]", "request: expected a JSON object, got list"),
        (parse_request, b'{"csr": ""}', "request: expected a non-empty string field 'csr'"),
        (parse_request, b'{"csr": "-----BEGIN CERTIFICATE REQUEST-----"}', "request field 'csr': expected a PEM"),
        (parse_resign, b'{"certificationRequestInfo": "@@@"}', "answer field 'certificationRequestInfo': expected base64"),
        (parse_issued, b'{"certificate": "nope"}', "answer field 'certificate': expected a PEM certificate"),
    ],
)
def test_bodies_that_are_not_the_protocols_are_refused_naming_the_field(parse, body, message):
    with pytest.raises(ExchangeError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        parse(body)


def test_a_body_without_a_message_is_described():
    assert parse_message(b"<html>bad gateway</html>") == "no message (24 bytes of body)"
