"""The workload's X.509 identity: certificate, intermediates and private key, loaded and checked locally.

Everything that can be wrong with these files is reported here, before any network call, by a
LocalCredentialError whose message names the file and says what was expected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12 as pkcs12_format

from .errors import LocalCredentialError

ALGORITHM_RSA = "AWS4-X509-RSA-SHA256"
ALGORITHM_ECDSA = "AWS4-X509-ECDSA-SHA256"

#: Elliptic curves whose keys can sign CreateSession requests.
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class X509Identity:
    """A leaf certificate, the intermediates to send with it (issuer first) and its private key."""

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)
    source: str = ""  # the certificate file (or PKCS#12 bundle) it came from, for messages

    @property
    def serial_number(self) -> int:
        return self.certificate.serial_number

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.certificate.issuer.rfc4514_string()

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def algorithm(self) -> str:
        """The SigV4-X509 algorithm name for this key; the digest is always SHA-256."""
        return ALGORITHM_RSA if isinstance(self.private_key, rsa.RSAPrivateKey) else ALGORITHM_ECDSA

    def describe(self) -> str:
        return f"serial {self.serial_number} (0x{self.serial_number:x}), subject {self.subject!r}"


def load_identity(
    certificate: Path | None,
    private_key: Path | None,
    *,
    intermediates: Path | None = None,
    passphrase: bytes | None = None,
    pkcs12: Path | None = None,
) -> X509Identity:
    """Load an identity from PEM/DER files, or from a PKCS#12 bundle (`pkcs12`, with `certificate` None).

    `certificate` may hold the leaf followed by its intermediates (as cert-manager writes tls.crt);
    `intermediates` adds more. The key may be PKCS#1, SEC1 or PKCS#8 PEM (or DER), encrypted with
    `passphrase` or not. With a PKCS#12 bundle `private_key` may be None.
    """
    if pkcs12 is not None:
        leaf, key, chain = _load_pkcs12(Path(pkcs12), passphrase)
        cert_source = key_source = Path(pkcs12)
    else:
        if certificate is None:
            raise LocalCredentialError(
                "no certificate given: expected a certificate file or a PKCS#12 bundle"
            )
        if private_key is None:
            raise LocalCredentialError(
                f"no private key given for certificate {certificate}: expected a private key file"
            )
        leaf, *chain = load_certificates(Path(certificate), what="certificate")
        key = _load_private_key(Path(private_key), passphrase)
        cert_source, key_source = Path(certificate), Path(private_key)
    if intermediates is not None:
        chain += load_certificates(Path(intermediates), what="intermediate certificates")
    return _identity(leaf, chain, key, cert_source, key_source)


def identity_from_pem(
    certificate: bytes,
    private_key: bytes,
    *,
    sources: tuple[str, str],
    intermediates: bytes | None = None,
    passphrase: bytes | None = None,
) -> X509Identity:
    """As load_identity, from the files' contents (e.g. a Secret's keys); `sources` name the certificate
    and the key in messages."""
    cert_source, key_source = sources
    leaf, *chain = parse_certificates(_non_empty(certificate, cert_source, "certificate"), cert_source, "certificate")
    if intermediates is not None:
        chain += parse_certificates(
            _non_empty(intermediates, cert_source, "intermediate certificates"), cert_source, "intermediate certificates"
        )
    key = _parse_private_key(_non_empty(private_key, key_source, "private key"), key_source, passphrase)
    return _identity(leaf, chain, key, cert_source, key_source)


def _identity(
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    key: PrivateKeyTypes,
    cert_source: object,
    key_source: object,
) -> X509Identity:
    usable_key = _check_key_type(key, key_source)
    _check_key_matches(leaf, usable_key, cert_source, key_source)
    return X509Identity(
        certificate=leaf, private_key=usable_key, chain=_without(leaf, chain), source=str(cert_source)
    )


def check_validity(identity: X509Identity, now: dt.datetime) -> None:
    """Raise LocalCredentialError unless the certificate is valid at `now` (an aware datetime)."""
    where = f"certificate in {identity.source}" if identity.source else "certificate"
    if now < identity.not_before:
        raise LocalCredentialError(
            f"{where} is not valid yet: valid from {_iso(identity.not_before)}, now is {_iso(now)} "
            f"({identity.describe()}); check the clock or wait for the certificate's start time"
        )
    if now >= identity.not_after:
        raise LocalCredentialError(
            f"{where} expired at {_iso(identity.not_after)}, now is {_iso(now)} ({identity.describe()}): "
            "renew the certificate"
        )


def load_certificates(path: Path, *, what: str) -> list[x509.Certificate]:
    """All certificates in a PEM file (or the one in a DER file), in file order; at least one."""
    return parse_certificates(_read(path, what), path, what)


def parse_certificates(data: bytes, path: object, what: str) -> list[x509.Certificate]:
    """All certificates in PEM (or the one in DER) `data` read from `path`, in order; at least one."""
    if b"-----BEGIN" in data:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError as error:
            raise LocalCredentialError(
                f"{what} file {path} is not valid PEM: {error}; expected one or more "
                "-----BEGIN CERTIFICATE----- blocks",
                path,
            ) from None
        if certificates:
            return certificates
    else:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            pass
    raise LocalCredentialError(
        f"{what} file {path} holds no certificate: expected PEM -----BEGIN CERTIFICATE----- blocks or DER",
        path,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LocalCredentialError(f"{what} file {path} does not exist", path) from None
    except IsADirectoryError:
        raise LocalCredentialError(f"{what} file {path} is a directory: expected a file", path) from None
    except OSError as error:
        raise LocalCredentialError(
            f"cannot read {what} file {path}: {error.strerror or error}", path
        ) from None
    return _non_empty(data, path, what)


def _non_empty(data: bytes, path: object, what: str) -> bytes:
    if not data.strip():
        raise LocalCredentialError(f"{what} file {path} is empty", path)
    return data


def _load_private_key(path: Path, passphrase: bytes | None) -> PrivateKeyTypes:
    return _parse_private_key(_read(path, "private key"), path, passphrase)


def _parse_private_key(data: bytes, path: object, passphrase: bytes | None) -> PrivateKeyTypes:
    is_pem = b"-----BEGIN" in data
    if is_pem and b"PRIVATE KEY-----" not in data:
        raise LocalCredentialError(
            f"private key file {path} holds no private key: expected a PEM block such as -----BEGIN PRIVATE KEY-----, "
            "-----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----",
            path,
        )
    load = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        return load(data, password=passphrase)
    except TypeError as error:
        if passphrase is not None and "not encrypted" in str(error):
            return load(data, password=None)  # a passphrase for a plain key is harmless
        raise LocalCredentialError(
            f"private key file {path} is encrypted but no passphrase was given: provide the key's passphrase",
            path,
        ) from None
    except ValueError as error:
        if passphrase is not None and (b"ENCRYPTED" in data or not is_pem):
            raise LocalCredentialError(
                f"private key file {path} cannot be decrypted with the passphrase given: wrong passphrase?",
                path,
            ) from None
        raise LocalCredentialError(
            f"private key file {path} is not a valid private key ({_first_line(error)}): expected an RSA or EC key "
            "in PKCS#1, SEC1 or PKCS#8 PEM",
            path,
        ) from None
    except UnsupportedAlgorithm as error:
        raise LocalCredentialError(
            f"private key file {path} cannot be loaded: {_first_line(error)}", path
        ) from None


def _load_pkcs12(
    path: Path, passphrase: bytes | None
) -> tuple[x509.Certificate, PrivateKeyTypes, list[x509.Certificate]]:
    data = _read(path, "PKCS#12 bundle")
    try:
        key, leaf, extra = pkcs12_format.load_key_and_certificates(data, passphrase)
    except ValueError:
        hint = "no passphrase was given" if passphrase is None else "the passphrase is wrong"
        raise LocalCredentialError(
            f"cannot open PKCS#12 bundle {path}: it is not a PKCS#12 file or {hint}", path
        ) from None
    if leaf is None or key is None:
        raise LocalCredentialError(
            f"PKCS#12 bundle {path} lacks a {'certificate' if leaf is None else 'private key'}: "
            "expected the certificate and its private key",
            path,
        )
    return leaf, key, list(extra)


def _check_key_type(key: PrivateKeyTypes, path: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in SUPPORTED_CURVES:
        return key
    kind = f"EC {key.curve.name}" if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
    raise LocalCredentialError(
        f"private key in {path} is a {kind} key: Roles Anywhere accepts RSA keys and EC keys on P-256, P-384, P-521",
        path,
    )


def public_key_der(public_key: CertificatePublicKeyTypes) -> bytes:
    """The key's DER SubjectPublicKeyInfo: the form in which two public keys compare equal."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_key_matches(leaf: x509.Certificate, key: PrivateKey, cert_path: object, key_path: object) -> None:
    if public_key_der(leaf.public_key()) != public_key_der(key.public_key()):
        raise LocalCredentialError(
            f"private key in {key_path} does not match the certificate in {cert_path} "
            f"(serial {leaf.serial_number}, subject {leaf.subject.rfc4514_string()!r}): "
            "expected the key the certificate was issued for",
            key_path,
        )


def _without(leaf: x509.Certificate, chain: list[x509.Certificate]) -> list[x509.Certificate]:
    """The chain without the leaf and without duplicates, order kept."""
    seen = {leaf.fingerprint(hashes.SHA256())}
    kept = []
    for certificate in chain:
        fingerprint = certificate.fingerprint(hashes.SHA256())
        if fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(certificate)
    return kept


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
