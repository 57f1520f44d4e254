"""SigV4-X509 signer: known answers, and byte-for-byte agreement with AWS's iam-rolesanywhere-session."""

from __future__ import annotations

import datetime as dt
import json

import iam_rolesanywhere_session.iam_rolesanywhere_session as upstream
import pytest
from botocore.awsrequest import AWSRequest
from cryptography.hazmat.primitives.asymmetric import ec
from localcluster import pki
from rolesanywhere_protocol import signing
from rolesanywhere_protocol.identity import X509Identity

NOW = dt.datetime(2024, 5, 1, 12, 30, 45, tzinfo=dt.UTC)
URL = "https://rolesanywhere.us-east-1.amazonaws.com/sessions"
BODY = json.dumps(
    {
        "durationSeconds": 3600,
        "profileArn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p-1",
        "roleArn": "arn:aws:iam::123456789012:role/app",
        "trustAnchorArn": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-1",
    }
).encode()
CONTENT_TYPE = {"Content-Type": "application/x-amz-json-1.0"}


@pytest.fixture(scope="module")
def authority():
    root = pki.issue("Signing Test Root", now=NOW, is_ca=True, key_kind="ec-p256")
    return root, pki.issue("Signing Test Intermediate", now=NOW, issuer=root, is_ca=True, key_kind="ec-p256")


@pytest.fixture(scope="module")
def rsa_leaf(authority):
    return pki.issue("rsa-workload", now=NOW, issuer=authority[1], key_kind="rsa2048", client=True)


def identity_of(issued, with_chain=True) -> X509Identity:
    return X509Identity(
        certificate=issued.cert, private_key=issued.key, chain=issued.chain if with_chain else []
    )


def upstream_signed(issued, url: str, with_chain: bool, monkeypatch) -> AWSRequest:
    """Sign with iam-rolesanywhere-session at NOW: its add_auth reads the clock through its `datetime` name."""

    class FrozenClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW

    monkeypatch.setattr(upstream, "datetime", FrozenClock)
    signer = upstream.IAMRolesAnywhereSigner(
        certificate=issued.cert_pem,
        private_key=issued.key_pem(),
        certificate_chain=issued.chain_pem if with_chain else None,
        region="us-east-1",
    )
    request = AWSRequest(method="POST", url=url, data=BODY)
    signer.add_auth(request)
    return request


@pytest.mark.parametrize("with_chain", [False, True], ids=["leaf-only", "with-intermediate"])
@pytest.mark.parametrize(
    "url",
    [
        URL,
        # the ARNs as query parameters, the way aws_signing_helper sends them (percent-encoded)
        URL + "?profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fp-1"
        "&roleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp",
    ],
    ids=["body", "query"],
)
def test_rsa_authorization_header_matches_iam_rolesanywhere_session_byte_for_byte(
    rsa_leaf, url, with_chain, monkeypatch
):
    theirs = upstream_signed(rsa_leaf, url, with_chain, monkeypatch)

    ours = signing.sign_request(
        identity_of(rsa_leaf, with_chain),
        url=url,
        body=BODY,
        now=NOW,
        region="us-east-1",
        headers=CONTENT_TYPE,
    )

    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert {k.lower(): v for k, v in ours.headers.items()} == {
        k.lower(): v for k, v in theirs.headers.items()
    }


@pytest.mark.parametrize("key_kind", ["ec-p256", "ec-p384"])
def test_ecdsa_signature_from_iam_rolesanywhere_session_verifies_over_our_string_to_sign(
    authority, key_kind, monkeypatch
):
    # ECDSA signatures are randomised, so agreement is shown by verifying theirs against our string to sign.
    leaf = pki.issue(f"{key_kind}-workload", now=NOW, issuer=authority[1], key_kind=key_kind, client=True)
    theirs = upstream_signed(leaf, URL, True, monkeypatch)
    parsed = signing.parse_authorization(theirs.headers["Authorization"])
    headers = list(theirs.headers.items())
    canonical = signing.canonical_request("POST", "/sessions", [], headers, parsed.signed_headers, BODY)
    text = signing.string_to_sign(parsed.algorithm, signing.format_amz_date(NOW), parsed.scope, canonical)

    assert parsed.algorithm == "AWS4-X509-ECDSA-SHA256"  # SHA-256 on every curve, P-384 included
    assert signing.verify(leaf.cert.public_key(), parsed.algorithm, text, parsed.signature)
    ours = signing.sign_request(
        identity_of(leaf), url=URL, body=BODY, now=NOW, region="us-east-1", headers=CONTENT_TYPE
    )
    assert signing.parse_authorization(ours.headers["Authorization"]).signed_headers == parsed.signed_headers


def test_canonical_request_known_answer():
    headers = [
        ("Host", "rolesanywhere.eu-west-1.amazonaws.com"),
        ("Content-Type", "application/json"),
        ("X-Amz-Date", "20240501T123045Z"),
        ("X-Custom", "  spaced    out  value "),
        ("X-Custom", "second"),
        ("User-Agent", "ignored"),
    ]
    signed = signing.names_to_sign(headers)

    canonical = signing.canonical_request(
        "post",
        "/sessions",
        [("roleArn", "arn:aws:iam::1:role/a b"), ("profileArn", "p")],
        headers,
        signed,
        b"{}",
    )

    assert canonical == (
        "POST\n"
        "/sessions\n"
        "profileArn=p&roleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b\n"
        "content-type:application/json\n"
        "host:rolesanywhere.eu-west-1.amazonaws.com\n"
        "x-amz-date:20240501T123045Z\n"
        "x-custom:spaced out value,second\n"
        "\n"
        "content-type;host;x-amz-date;x-custom\n"
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256("{}")
    )
    assert signing.string_to_sign(
        "AWS4-X509-RSA-SHA256", "20240501T123045Z", "20240501/eu-west-1/rolesanywhere/aws4_request", canonical
    ).split("\n")[:3] == [
        "AWS4-X509-RSA-SHA256",
        "20240501T123045Z",
        "20240501/eu-west-1/rolesanywhere/aws4_request",
    ]


def test_sign_request_sets_certificate_headers_scope_and_serial(rsa_leaf):
    signed = signing.sign_request(
        identity_of(rsa_leaf), url=URL, body=BODY, now=NOW, region="us-east-1", service="rolesanywhere"
    )

    parsed = signing.parse_authorization(signed.headers["Authorization"])
    assert signed.headers["Host"] == "rolesanywhere.us-east-1.amazonaws.com"
    assert signed.headers["X-Amz-Date"] == "20240501T123045Z"
    assert signing.decode_certificates(signed.headers["X-Amz-X509"]) == [rsa_leaf.cert]
    assert signing.decode_certificates(signed.headers["X-Amz-X509-Chain"]) == rsa_leaf.chain
    assert parsed.serial_number == rsa_leaf.cert.serial_number
    assert parsed.scope == "20240501/us-east-1/rolesanywhere/aws4_request"
    assert parsed.signed_headers == ("host", "x-amz-date", "x-amz-x509", "x-amz-x509-chain")


def test_sign_request_omits_the_chain_header_without_intermediates(rsa_leaf):
    signed = signing.sign_request(
        identity_of(rsa_leaf, False), url=URL, body=b"", now=NOW, region="us-east-1"
    )
    assert "X-Amz-X509-Chain" not in signed.headers


def test_signature_fails_to_verify_after_any_change(rsa_leaf):
    text = "AWS4-X509-RSA-SHA256\n20240501T123045Z\nscope\nabc"
    signature = signing.sign(rsa_leaf.key, text)
    assert signing.verify(rsa_leaf.cert.public_key(), "AWS4-X509-RSA-SHA256", text, signature)
    assert not signing.verify(rsa_leaf.cert.public_key(), "AWS4-X509-RSA-SHA256", text + "d", signature)
    assert not signing.verify(rsa_leaf.cert.public_key(), "AWS4-X509-ECDSA-SHA256", text, signature)
    assert not signing.verify(rsa_leaf.cert.public_key(), "AWS4-X509-RSA-SHA256", text, "zz")


def test_signing_time_must_be_timezone_aware(rsa_leaf):
    with pytest.raises(ValueError, match="timezone-aware"):
        signing.sign_request(
            identity_of(rsa_leaf), url=URL, body=b"", now=dt.datetime(2024, 5, 1), region="us-east-1"
        )


def test_parse_authorization_rejects_other_schemes_with_the_expected_form():
    with pytest.raises(ValueError, match="expected 'AWS4-X509-"):
        signing.parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIA/20240501/us-east-1/sts/aws4_request, a=b"
        )


def test_amz_date_round_trip_and_rejects_other_formats():
    assert signing.parse_amz_date(signing.format_amz_date(NOW)) == NOW
    with pytest.raises(ValueError, match="YYYYMMDDTHHMMSSZ"):
        signing.parse_amz_date("2024-05-01T12:30:45Z")


def test_algorithm_follows_the_key_type(rsa_leaf):
    assert signing.algorithm_for(rsa_leaf.key) == "AWS4-X509-RSA-SHA256"
    assert signing.algorithm_for(ec.generate_private_key(ec.SECP384R1())) == "AWS4-X509-ECDSA-SHA256"
