"""Small X.509 toolkit for the local control plane, the demo and the tests.

Everything here is pure apart from the key generation: the clock is passed in
as `now`, so tests can mint certificates that are expired or not yet valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = str  # "rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384", "ec-p521"

_CURVES = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1, "ec-p521": ec.SECP521R1}


def new_key(kind: KeyKind = "ec-p256"):
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind]())
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    raise ValueError(f"unknown key kind {kind!r}: expected one of rsa2048, rsa3072, rsa4096, {', '.join(_CURVES)}")


@dataclass
class Issued:
    """A certificate together with its private key."""

    cert: x509.Certificate
    key: object
    chain: list[x509.Certificate] = field(default_factory=list)  # intermediates, leaf's issuer first

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self, fmt: str = "pkcs8", passphrase: bytes | None = None) -> bytes:
        """The key as PEM: fmt is "pkcs8", or "traditional" (PKCS#1 for RSA, SEC1 for EC)."""
        encryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        formats = {
            "pkcs8": serialization.PrivateFormat.PKCS8,
            "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
        }
        return self.key.private_bytes(serialization.Encoding.PEM, formats[fmt], encryption)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem())
        key_path.chmod(0o600)
        return cert_path, key_path


def issue(
    common_name: str,
    *,
    now: dt.datetime,
    issuer: Issued | None = None,
    key_kind: KeyKind = "ec-p256",
    key=None,
    is_ca: bool = False,
    organizations: tuple[str, ...] = (),
    organizational_units: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    valid_for: dt.timedelta = dt.timedelta(days=365),
    not_before: dt.datetime | None = None,
    serial: int | None = None,
) -> Issued:
    """Issue a certificate; self-signed when `issuer` is None."""
    key = key or new_key(key_kind)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in organizational_units]
    subject = x509.Name(attrs)
    start = not_before or (now - dt.timedelta(minutes=5))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    chain: list[x509.Certificate] = []
    if issuer and issuer.cert.issuer != issuer.cert.subject:
        chain = [issuer.cert, *issuer.chain]
    return Issued(cert=cert, key=key, chain=chain)


def load(directory: Path, stem: str) -> Issued:
    """A certificate and key that `Issued.write(directory, stem)` wrote."""
    cert = x509.load_pem_x509_certificate((directory / f"{stem}.crt").read_bytes())
    key = serialization.load_pem_private_key((directory / f"{stem}.key").read_bytes(), password=None)
    return Issued(cert=cert, key=key)


def write_rsa_keypair(private_path: Path, public_path: Path) -> None:
    """The service-account signing key pair that kube-apiserver and kube-controller-manager share."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def revocation_list(
    issuer: Issued, *serials: int, now: dt.datetime | None = None
) -> x509.CertificateRevocationList:
    """A CRL signed by `issuer` listing `serials`, current from a day before `now` to a day after."""
    now = now or dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    builder = x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
    builder = builder.last_update(now - day).next_update(now + day)
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - day).build()
        )
    return builder.sign(issuer.key, hashes.SHA256())
