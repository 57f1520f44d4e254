"""Authenticating a CreateSession request: the SigV4-X509 checks, as pure functions of the request and a clock.

Order of the checks (the first failure answers): Authorization header present and well formed;
the certificate and date headers signed; X-Amz-Date parseable, matching the credential scope and
within MAX_CLOCK_SKEW of the emulator's clock; X-Amz-X509 (and X-Amz-X509-Chain) decodable; the
Credential's serial number being the certificate's; the algorithm matching the certificate's key;
the scope naming this region and service; and finally the signature over the recomputed
canonical request. Trust in the certificate is checked later, once the trust anchor is known.
"""

from __future__ import annotations

import binascii
import datetime as dt
import logging
from dataclasses import dataclass

from cryptography import x509
from rolesanywhere_protocol.arns import SERVICE
from rolesanywhere_protocol.signing import (
    HEADER_AUTHORIZATION,
    HEADER_DATE,
    HEADER_X509,
    HEADER_X509_CHAIN,
    SCOPE_TERMINATOR,
    Authorization,
    algorithm_for,
    canonical_request,
    decode_certificates,
    format_amz_date,
    parse_amz_date,
    parse_authorization,
    query_pairs,
    string_to_sign,
    verify,
)

from .errors import INVALID_SIGNATURE, UNTRUSTED_CERTIFICATE, access_denied
from .trust import MAX_INTERMEDIATES

log = logging.getLogger(__name__)

#: How far X-Amz-Date may be from the emulator's clock, either way.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)

#: Headers that must be covered by the signature when present (lower case).
MUST_BE_SIGNED = ("host", HEADER_DATE.lower(), HEADER_X509.lower(), HEADER_X509_CHAIN.lower())


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    path: str  # without the query
    query: str  # the raw query string
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Authenticated:
    certificate: x509.Certificate
    intermediates: list[x509.Certificate]
    authorization: Authorization


def authenticate(request: IncomingRequest, *, region: str, now: dt.datetime) -> Authenticated:
    """The request's certificate and chain, once its signature is proven; ApiError otherwise."""
    value = request.header(HEADER_AUTHORIZATION)
    if not value:
        raise access_denied("Missing Authentication Token", "no Authorization header")
    try:
        authorization = parse_authorization(value)
    except ValueError as error:
        raise access_denied(INVALID_SIGNATURE, str(error)) from None
    present = {name.lower() for name, _ in request.headers}
    for name in MUST_BE_SIGNED:
        if name in present and name not in authorization.signed_headers:
            raise access_denied(INVALID_SIGNATURE, f"header {name} is present but not in SignedHeaders")
    for name in ("host", HEADER_DATE.lower(), HEADER_X509.lower()):
        if name not in present:
            raise access_denied(INVALID_SIGNATURE, f"the request has no {name} header")
    amz_date = request.header(HEADER_DATE) or ""
    _check_date(amz_date, authorization, now)
    certificate, intermediates = _certificates(request)
    _check_credential(authorization, certificate, region, amz_date)
    canonical = canonical_request(
        request.method,
        request.path,
        query_pairs(request.query),
        request.headers,
        authorization.signed_headers,
        request.body,
    )
    text = string_to_sign(authorization.algorithm, amz_date, authorization.scope, canonical)
    if not verify(certificate.public_key(), authorization.algorithm, text, authorization.signature):
        log.debug("signature mismatch; canonical request:\n%s\nstring to sign:\n%s", canonical, text)
        raise access_denied(
            INVALID_SIGNATURE,
            "the signature does not verify with the certificate's public key over the canonical request",
        )
    return Authenticated(certificate=certificate, intermediates=intermediates, authorization=authorization)


def _check_date(amz_date: str, authorization: Authorization, now: dt.datetime) -> None:
    try:
        signed_at = parse_amz_date(amz_date)
    except ValueError as error:
        raise access_denied(INVALID_SIGNATURE, str(error)) from None
    if authorization.scope_date != amz_date[:8]:
        raise access_denied(
            INVALID_SIGNATURE,
            f"credential scope date {authorization.scope_date} is not X-Amz-Date's {amz_date[:8]}",
        )
    if signed_at < now - MAX_CLOCK_SKEW:
        earliest = format_amz_date(now - MAX_CLOCK_SKEW)
        raise access_denied(
            f"Signature expired: {amz_date} is now earlier than {earliest} ({format_amz_date(now)} - 5 min.)"
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = format_amz_date(now + MAX_CLOCK_SKEW)
        raise access_denied(
            f"Signature not yet current: {amz_date} is still later than {latest} ({format_amz_date(now)} + 5 min.)"
        )


def _certificates(request: IncomingRequest) -> tuple[x509.Certificate, list[x509.Certificate]]:
    try:
        leaf = decode_certificates(request.header(HEADER_X509) or "")
        intermediates = decode_certificates(request.header(HEADER_X509_CHAIN) or "")
    except (ValueError, binascii.Error) as error:
        raise access_denied(INVALID_SIGNATURE, f"a certificate header is not base64 DER: {error}") from None
    if len(leaf) != 1:
        raise access_denied(
            INVALID_SIGNATURE, f"X-Amz-X509 holds {len(leaf)} certificates: expected exactly one"
        )
    if len(intermediates) > MAX_INTERMEDIATES:
        # The guide gives no error for this; the certificate cannot be trusted, so the emulator
        # answers as for any untrusted certificate.
        raise access_denied(
            UNTRUSTED_CERTIFICATE,
            f"X-Amz-X509-Chain holds {len(intermediates)} certificates: at most {MAX_INTERMEDIATES} are allowed",
        )
    return leaf[0], intermediates


def _check_credential(
    authorization: Authorization, certificate: x509.Certificate, region: str, amz_date: str
) -> None:
    if authorization.serial_number != certificate.serial_number:
        raise access_denied(
            INVALID_SIGNATURE,
            f"Credential serial {authorization.serial_number} is not the certificate's {certificate.serial_number}",
        )
    try:
        expected_algorithm = algorithm_for(certificate.public_key())
    except ValueError as error:
        raise access_denied(INVALID_SIGNATURE, str(error)) from None
    if authorization.algorithm != expected_algorithm:
        raise access_denied(
            INVALID_SIGNATURE,
            f"algorithm {authorization.algorithm} does not fit the certificate's key ({expected_algorithm})",
        )
    parts = authorization.scope.split("/")
    expected = [amz_date[:8], region, SERVICE, SCOPE_TERMINATOR]
    if parts != expected:
        raise access_denied(
            INVALID_SIGNATURE, f"credential scope {authorization.scope} is not {'/'.join(expected)}"
        )
