"""SigV4-X509: the Signature Version 4 variant that Roles Anywhere authenticates CreateSession with.

It is SigV4's canonical request and credential scope, with two differences: the string to sign
starts with AWS4-X509-RSA-SHA256 or AWS4-X509-ECDSA-SHA256, and the signature is made with the
certificate's private key (RSA PKCS#1 v1.5 or DER-encoded ECDSA, both over SHA-256, lowercase hex)
instead of an HMAC chain. The Credential is the certificate's serial number in decimal.

Every function here is pure: the clock comes in as `now`, the key as an argument. The emulator
uses the same functions to verify what clients sign.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from .arns import SERVICE
from .identity import ALGORITHM_ECDSA, ALGORITHM_RSA, PrivateKey, X509Identity

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
SCOPE_TERMINATOR = "aws4_request"
HEADER_AUTHORIZATION = "Authorization"
HEADER_DATE = "X-Amz-Date"
HEADER_X509 = "X-Amz-X509"
HEADER_X509_CHAIN = "X-Amz-X509-Chain"
HEADER_HOST = "Host"
HEADER_CONTENT_TYPE = "Content-Type"

#: Headers never signed (lower case): set or rewritten by HTTP clients and proxies after signing.
UNSIGNED_HEADERS = frozenset({"authorization", "user-agent", "x-amzn-trace-id", "expect", "content-length"})

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class SignedRequest:
    """A request ready to send: the headers include Host, X-Amz-Date, the certificates and Authorization."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Authorization:
    """The parts of an `Authorization: AWS4-X509-... Credential=..., SignedHeaders=..., Signature=...` header."""

    algorithm: str
    serial_number: int
    scope: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope_date(self) -> str:
        return self.scope.split("/")[0]


def format_amz_date(now: dt.datetime) -> str:
    """`now` (an aware datetime) as X-Amz-Date's YYYYMMDDTHHMMSSZ."""
    if now.tzinfo is None:
        raise ValueError("the signing time must be timezone-aware")
    return now.astimezone(dt.UTC).strftime(AMZ_DATE_FORMAT)


def parse_amz_date(value: str) -> dt.datetime:
    """X-Amz-Date back to an aware datetime; ValueError when it is not YYYYMMDDTHHMMSSZ."""
    if not re.fullmatch(r"\d{8}T\d{6}Z", value or ""):
        raise ValueError(f"X-Amz-Date {value!r} is not in the form YYYYMMDDTHHMMSSZ")
    return dt.datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=dt.UTC)


def credential_scope(amz_date: str, region: str, service: str = SERVICE) -> str:
    return f"{amz_date[:8]}/{region}/{service}/{SCOPE_TERMINATOR}"


def uri_encode(value: str) -> str:
    """RFC 3986 percent-encoding as SigV4 requires: everything but A-Z a-z 0-9 - _ . ~ is encoded."""
    return quote(value, safe="-_.~")


def canonical_uri(path: str) -> str:
    return quote(path or "/", safe="/~")


def canonical_query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded query parameters, encoded the SigV4 way and sorted by name, then value."""
    encoded = sorted((uri_encode(name), uri_encode(value)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The decoded parameters of a query string (the part of a URL after "?")."""
    return parse_qsl(query, keep_blank_values=True)


def header_items(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def names_to_sign(headers: Headers) -> tuple[str, ...]:
    """The (lower-case, sorted) names of the headers a client signs: all but UNSIGNED_HEADERS."""
    return tuple(sorted({name.lower() for name, _ in header_items(headers)} - UNSIGNED_HEADERS))


def canonical_headers(headers: Headers, signed_headers: Sequence[str]) -> str:
    """`name:value` lines for the signed headers; repeated headers join with ",", spaces are collapsed."""
    values: dict[str, list[str]] = {}
    for name, value in header_items(headers):
        values.setdefault(name.lower(), []).append(" ".join(str(value).split()))
    return "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in signed_headers)


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Headers,
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """SigV4's canonical request; `signed_headers` are lower-case and sorted."""
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query_string(query),
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash(body),
        ]
    )


def string_to_sign(algorithm: str, amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([algorithm, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def algorithm_for(key: rsa.RSAPrivateKey | rsa.RSAPublicKey | ec.EllipticCurvePrivateKey | object) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return ALGORITHM_RSA
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ALGORITHM_ECDSA
    raise ValueError(f"cannot sign with a {type(key).__name__}: expected an RSA or EC key")


def sign(private_key: PrivateKey, text: str) -> str:
    """The key's signature over `text` (SHA-256; PKCS#1 v1.5 for RSA, DER ECDSA for EC), lowercase hex."""
    data = text.encode("utf-8")
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256())).hex()
    raise ValueError(f"cannot sign with a {type(private_key).__name__}: expected an RSA or EC key")


def verify(public_key: PublicKeyTypes, algorithm: str, text: str, signature_hex: str) -> bool:
    """Whether `signature_hex` is `public_key`'s signature over `text` under `algorithm`."""
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    data = text.encode("utf-8")
    try:
        if algorithm == ALGORITHM_RSA and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        if algorithm == ALGORITHM_ECDSA and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


def authorization_header(
    algorithm: str, serial_number: int, scope: str, signed_headers: Sequence[str], signature: str
) -> str:
    return (
        f"{algorithm} Credential={serial_number}/{scope}, "
        f"SignedHeaders={';'.join(signed_headers)}, Signature={signature}"
    )


_AUTHORIZATION = re.compile(
    r"^(?P<algorithm>AWS4-X509-[A-Z0-9]+-SHA256)\s+Credential=(?P<serial>\d+)/(?P<scope>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)


def parse_authorization(value: str) -> Authorization:
    """Split an Authorization header; ValueError saying what is wrong when it is not SigV4-X509."""
    match = _AUTHORIZATION.match(value or "")
    if not match:
        raise ValueError(
            "Authorization header is not SigV4-X509: expected "
            "'AWS4-X509-{RSA|ECDSA}-SHA256 Credential=SERIAL/DATE/REGION/SERVICE/aws4_request, "
            "SignedHeaders=..., Signature=...'"
        )
    return Authorization(
        algorithm=match["algorithm"],
        serial_number=int(match["serial"]),
        scope=match["scope"],
        signed_headers=tuple(match["signed"].split(";")),
        signature=match["signature"].lower(),
    )


def encode_certificate(certificate: x509.Certificate) -> str:
    """X-Amz-X509's value: base64 of the certificate's DER."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def encode_chain(chain: Sequence[x509.Certificate]) -> str:
    """X-Amz-X509-Chain's value: the intermediates' base64 DER, comma-joined, issuer first."""
    return ",".join(encode_certificate(certificate) for certificate in chain)


def decode_certificates(value: str) -> list[x509.Certificate]:
    """Certificates from X-Amz-X509 / X-Amz-X509-Chain; ValueError when one is not base64 DER."""
    certificates = []
    for part in (value or "").split(","):
        if part.strip():
            certificates.append(x509.load_der_x509_certificate(base64.b64decode(part.strip(), validate=True)))
    return certificates


def sign_request(
    identity: X509Identity,
    *,
    url: str,
    body: bytes,
    now: dt.datetime,
    region: str,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    service: str = SERVICE,
) -> SignedRequest:
    """Add Host, X-Amz-Date, X-Amz-X509 (and X-Amz-X509-Chain) to `headers`, sign them all, add Authorization.

    The signed Host is the URL's host[:port] exactly as written in `url`; send it as given.
    """
    amz_date = format_amz_date(now)
    parts = urlsplit(url)
    all_headers = {name: value for name, value in (headers or {}).items() if name.lower() != "authorization"}
    all_headers[HEADER_HOST] = parts.netloc
    all_headers[HEADER_DATE] = amz_date
    all_headers[HEADER_X509] = encode_certificate(identity.certificate)
    if identity.chain:
        all_headers[HEADER_X509_CHAIN] = encode_chain(identity.chain)
    signed = names_to_sign(all_headers)
    scope = credential_scope(amz_date, region, service)
    canonical = canonical_request(method, parts.path, query_pairs(parts.query), all_headers, signed, body)
    signature = sign(identity.private_key, string_to_sign(identity.algorithm, amz_date, scope, canonical))
    all_headers[HEADER_AUTHORIZATION] = authorization_header(
        identity.algorithm, identity.serial_number, scope, signed, signature
    )
    return SignedRequest(method=method, url=url, headers=all_headers, body=body)
