"""The emulator's SigV4-X509 checks: signed requests pass, every tampering is refused with the service's error."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from localcluster import pki
from rolesanywhere_emulator.authentication import IncomingRequest, authenticate
from rolesanywhere_emulator.errors import ApiError
from rolesanywhere_protocol import signing
from rolesanywhere_protocol.identity import X509Identity

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
URL = "https://rolesanywhere.us-east-1.amazonaws.com/sessions"
BODY = json.dumps({"durationSeconds": 3600, "roleArn": "arn:aws:iam::123456789012:role/app"}).encode()


@pytest.fixture(scope="module")
def identities():
    root = pki.issue("Auth Test Root", now=NOW, is_ca=True)
    intermediate = pki.issue("Auth Test Intermediate", now=NOW, issuer=root, is_ca=True)
    issued = {
        kind: pki.issue(f"{kind}-workload", now=NOW, issuer=intermediate, key_kind=kind, client=True)
        for kind in ("rsa2048", "ec-p256", "ec-p384")
    }
    return {
        kind: X509Identity(certificate=i.cert, private_key=i.key, chain=i.chain) for kind, i in issued.items()
    }


def signed(identity, *, url=URL, body=BODY, now=NOW, region="us-east-1") -> IncomingRequest:
    request = signing.sign_request(
        identity, url=url, body=body, now=now, region=region, headers={"Content-Type": "application/json"}
    )
    path, _, query = url.split("amazonaws.com", 1)[1].partition("?")
    return IncomingRequest("POST", path, query, list(request.headers.items()), body)


def with_header(request: IncomingRequest, name: str, value: str | None) -> IncomingRequest:
    headers = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return dataclasses.replace(request, headers=headers)


def header(request: IncomingRequest, name: str) -> str:
    return request.header(name) or ""


def refused(request: IncomingRequest, *, now=NOW) -> ApiError:
    with pytest.raises(ApiError) as caught:
        authenticate(request, region="us-east-1", now=now)
    return caught.value


@pytest.mark.parametrize("kind", ["rsa2048", "ec-p256", "ec-p384"])
def test_accepts_a_correctly_signed_request(identities, kind):
    authenticated = authenticate(signed(identities[kind]), region="us-east-1", now=NOW)
    assert authenticated.certificate == identities[kind].certificate
    assert authenticated.intermediates == identities[kind].chain


def test_accepts_signatures_within_five_minutes_either_way(identities):
    for skew in (dt.timedelta(minutes=-5), dt.timedelta(minutes=5)):
        authenticate(signed(identities["ec-p256"], now=NOW + skew), region="us-east-1", now=NOW)


def test_accepts_arns_as_signed_query_parameters(identities):
    url = URL + "?profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A1%3Aprofile%2Fp"
    authenticate(signed(identities["ec-p256"], url=url), region="us-east-1", now=NOW)


def assert_invalid_signature(error: ApiError, reason: str) -> None:
    assert (error.status, error.code, error.message) == (403, "AccessDeniedException", "Invalid signature")
    assert reason in error.reason


def test_changed_body_is_refused(identities):
    request = dataclasses.replace(signed(identities["rsa2048"]), body=BODY.replace(b"3600", b"7200"))
    assert_invalid_signature(refused(request), "does not verify")


@pytest.mark.parametrize("name", ["Content-Type", "Host", "X-Amz-X509-Chain"])
def test_changed_signed_header_is_refused(identities, name):
    replacements = {
        "Content-Type": "text/plain",
        "Host": "evil.example",
        "X-Amz-X509-Chain": signing.encode_chain(
            [identities["rsa2048"].certificate]
        ),  # valid, but not the signed one
    }
    request = with_header(signed(identities["ec-p256"]), name, replacements[name])
    assert_invalid_signature(refused(request), "does not verify")


def test_added_query_parameter_is_refused(identities):
    request = dataclasses.replace(
        signed(identities["ec-p256"]), query="roleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fadmin"
    )
    assert_invalid_signature(refused(request), "does not verify")


def test_unsigned_certificate_header_is_refused(identities):
    request = signed(identities["ec-p256"])
    authorization = header(request, "Authorization").replace(";x-amz-x509-chain", "")
    assert_invalid_signature(
        refused(with_header(request, "Authorization", authorization)),
        "x-amz-x509-chain is present but not in SignedHeaders",
    )


def test_missing_date_header_is_refused(identities):
    assert_invalid_signature(
        refused(with_header(signed(identities["ec-p256"]), "X-Amz-Date", None)), "no x-amz-date header"
    )


@pytest.mark.parametrize(
    ("skew", "message"),
    [
        (
            dt.timedelta(minutes=-5, seconds=-1),
            "Signature expired: 20240501T115459Z is now earlier than 20240501T115500Z",
        ),
        (
            dt.timedelta(minutes=5, seconds=1),
            "Signature not yet current: 20240501T120501Z is still later than",
        ),
    ],
    ids=["too-old", "too-new"],
)
def test_date_outside_the_five_minute_window_is_refused(identities, skew, message):
    error = refused(signed(identities["ec-p256"], now=NOW + skew))
    assert (error.status, error.code) == (403, "AccessDeniedException")
    assert error.message.startswith(message)


def test_signature_by_another_key_is_refused(identities):
    impostor = dataclasses.replace(identities["ec-p256"], private_key=identities["ec-p384"].private_key)
    assert_invalid_signature(refused(signed(impostor)), "does not verify")


def test_credential_serial_must_be_the_certificate_serial(identities):
    request = signed(identities["ec-p256"])
    serial = str(identities["ec-p256"].serial_number)
    authorization = header(request, "Authorization").replace(f"Credential={serial}", "Credential=12345")
    assert_invalid_signature(
        refused(with_header(request, "Authorization", authorization)),
        "Credential serial 12345 is not the certificate's",
    )


def test_algorithm_must_fit_the_key(identities):
    request = signed(identities["ec-p256"])
    authorization = header(request, "Authorization").replace("AWS4-X509-ECDSA-SHA256", "AWS4-X509-RSA-SHA256")
    assert_invalid_signature(refused(with_header(request, "Authorization", authorization)), "does not fit")


def test_scope_must_name_the_emulated_region(identities):
    assert_invalid_signature(
        refused(signed(identities["ec-p256"], region="eu-west-1")),
        "credential scope 20240501/eu-west-1/rolesanywhere/aws4_request is not",
    )


def test_missing_or_foreign_authorization_is_refused(identities):
    request = signed(identities["ec-p256"])
    missing = refused(with_header(request, "Authorization", None))
    assert (missing.status, missing.message) == (403, "Missing Authentication Token")
    foreign = refused(
        with_header(
            request, "Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=00"
        )
    )
    assert_invalid_signature(foreign, "not SigV4-X509")


def test_undecodable_certificate_is_refused(identities):
    request = with_header(signed(identities["ec-p256"]), "X-Amz-X509", "bm90IGEgY2VydA==")
    assert_invalid_signature(refused(request), "not base64 DER")


def test_a_chain_header_over_five_certificates_is_refused(identities):
    """User Guide, signing process: X-Amz-X509-Chain "MUST NOT exceed the maximum depth of 5 certificates"."""
    identity = identities["ec-p256"]
    filler = pki.issue("Filler CA", now=NOW, is_ca=True).cert
    five = dataclasses.replace(identity, chain=[*identity.chain, *[filler] * (5 - len(identity.chain))])
    assert len(authenticate(signed(five), region="us-east-1", now=NOW).intermediates) == 5
    six = dataclasses.replace(identity, chain=[*five.chain, filler])
    error = refused(signed(six))
    assert (error.status, error.code, error.message) == (403, "AccessDeniedException", "Untrusted Signing Certificate")
    assert "X-Amz-X509-Chain holds 6 certificates: at most 5" in error.reason
