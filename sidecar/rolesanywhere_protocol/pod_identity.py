"""The per-pod identity exchange between a sidecar and the operator's identity endpoint, declared once.

The sidecar keeps its private key in memory and POSTs a CSR (`request_body`) with its projected
service-account token as `Authorization: Bearer`. The operator decides the subject and SANs itself; when
the CSR's CertificationRequestInfo is not the one it decided, it answers RESIGN_STATUS with that info
(`resign_body`), which the sidecar signs with its key (csr.sign_certification_request_info refuses an info
naming another key) and sends again. cert-manager checks a CSR's signature, so only the pod can sign what
the operator decided. ISSUED_STATUS carries the certificate and its chain (`issued_body`). Every other
status carries a `message` saying why.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

#: Audience of the projected service-account token the sidecar authenticates with (its own, so a token
#: meant for the API server or anything else is refused).
TOKEN_AUDIENCE = "rolesanywhere.dev/identity"
#: Lifetime of that token; the kubelet rotates it at 80 % of it, and the sidecar reads it for every call.
TOKEN_EXPIRATION_SECONDS = 600
#: Seconds the endpoint waits for the issuer to sign before it tells the sidecar to come back (503).
ISSUE_WAIT_SECONDS = 20.0
#: Seconds the sidecar waits for an answer: longer than the endpoint's own wait, so a slow issuer's answer is
#: not dropped (and its CertificateRequest made again).
CLIENT_TIMEOUT_SECONDS = ISSUE_WAIT_SECONDS + 10.0
#: Status of an issued certificate.
ISSUED_STATUS = 200
#: Status asking the sidecar to sign the CertificationRequestInfo in the body and send it again.
RESIGN_STATUS = 409

# The JSON bodies' fields.
CSR_FIELD = "csr"  # request: PEM CSR
MESSAGE_FIELD = "message"  # every answer but ISSUED_STATUS: why, for the sidecar's log
INFO_FIELD = "certificationRequestInfo"  # RESIGN_STATUS: base64 of the DER CertificationRequestInfo to sign
CERTIFICATE_FIELD = "certificate"  # ISSUED_STATUS: PEM leaf certificate
CHAIN_FIELD = "chain"  # ISSUED_STATUS: PEM intermediates, issuer first (may be empty)


class ExchangeError(ValueError):
    """A body of the exchange that is not what the protocol says; the message says what is wrong."""


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    chain: list[x509.Certificate]


def request_body(csr: x509.CertificateSigningRequest) -> bytes:
    return _json({CSR_FIELD: csr.public_bytes(serialization.Encoding.PEM).decode("ascii")})


def parse_request(body: bytes | Mapping[str, Any]) -> x509.CertificateSigningRequest:
    """The CSR of a request's body (or of the body already parsed as JSON)."""
    fields = _object(body, "request") if isinstance(body, bytes) else body
    text = _field(fields, CSR_FIELD, "request")
    try:
        return x509.load_pem_x509_csr(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as error:
        raise ExchangeError(f"request field {CSR_FIELD!r}: expected a PEM certificate request ({error})") from None


def resign_fields(message: str, info: bytes) -> dict[str, str]:
    return {MESSAGE_FIELD: message, INFO_FIELD: base64.b64encode(info).decode("ascii")}


def resign_body(message: str, info: bytes) -> bytes:
    return _json(resign_fields(message, info))


def parse_resign(body: bytes) -> bytes:
    """The DER CertificationRequestInfo to sign."""
    text = _field(_object(body, "answer"), INFO_FIELD, "answer")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ExchangeError(f"answer field {INFO_FIELD!r}: expected base64") from None


def message_fields(message: str) -> dict[str, str]:
    return {MESSAGE_FIELD: message}


def message_body(message: str) -> bytes:
    return _json(message_fields(message))


def parse_message(body: bytes) -> str:
    """The answer's message, or a description of the body when it has none (e.g. a proxy's error page)."""
    try:
        message = json.loads(body).get(MESSAGE_FIELD)
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) else f"no message ({len(body)} bytes of body)"


def issued_fields(certificate_pem: str, chain_pem: str) -> dict[str, str]:
    return {CERTIFICATE_FIELD: certificate_pem, CHAIN_FIELD: chain_pem}


def issued_body(certificate_pem: str, chain_pem: str) -> bytes:
    return _json(issued_fields(certificate_pem, chain_pem))


def parse_issued(body: bytes) -> Issued:
    answer = _object(body, "answer")
    try:
        leaf = x509.load_pem_x509_certificates(_field(answer, CERTIFICATE_FIELD, "answer").encode("ascii"))
    except (ValueError, UnicodeEncodeError) as error:
        raise ExchangeError(f"answer field {CERTIFICATE_FIELD!r}: expected a PEM certificate ({error})") from None
    chain_text = answer.get(CHAIN_FIELD) or ""
    if not isinstance(chain_text, str):
        raise ExchangeError(f"answer field {CHAIN_FIELD!r}: expected PEM text")
    try:
        chain = x509.load_pem_x509_certificates(chain_text.encode("ascii")) if chain_text.strip() else []
    except (ValueError, UnicodeEncodeError) as error:
        raise ExchangeError(f"answer field {CHAIN_FIELD!r}: expected PEM certificates ({error})") from None
    # cert-manager's certificate field may carry the chain after the leaf; the leaf is its first.
    return Issued(certificate=leaf[0], chain=[*leaf[1:], *chain])


def _json(fields: dict[str, str]) -> bytes:
    return json.dumps(fields).encode()


def _object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise ExchangeError(f"{what}: expected a JSON object") from None
    if not isinstance(value, dict):
        raise ExchangeError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _field(fields: Mapping[str, Any], name: str, what: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise ExchangeError(f"{what}: expected a non-empty string field {name!r}")
    return value
