"""Certificate path validation from the end-entity certificate to a trust anchor's CA certificate.

The rules Roles Anywhere documents for the certificates it accepts: the end-entity certificate is
X.509 v3, not a CA, and may sign (keyUsage with digitalSignature); every CA on the path has basicConstraints
CA:TRUE, may sign certificates (keyCertSign) and respects its pathLenConstraint; each certificate is
signed by the next one up (SHA-256 or stronger); every certificate on the path is valid at `now`.
The path ends at a certificate of the trust anchor's bundle, which is trusted as it is (it may be an
intermediate CA). Intermediates come from the request's X-Amz-X509-Chain header. A certificate on
the path whose serial a CRL of the trust anchor lists is refused.

The guide's further rules, applied here too: a certificate with an empty subject is refused (the
User Guide says such certificates are "NOT yet supported"), and so is a path with a critical
extension the emulator does not recognise (PKIX); a trust anchor's own certificates are
checked the way CreateTrustAnchor checks them (check_anchor_certificate), when the configuration
is loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from .revocation import revoking_crl

#: The User Guide (signing process) says of X-Amz-X509-Chain: it "MUST NOT exceed the maximum depth
#: of 5 certificates". At most this many certificates in that header, hence on the path between
#: the leaf and the anchor.
MAX_INTERMEDIATES = 5

ACCEPTED_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


class UntrustedCertificate(Exception):
    """The certificate cannot be trusted; the message says why (for the emulator's log, not the client)."""


def verify_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> list[x509.Certificate]:
    """The validated path [leaf, intermediates..., anchor]; UntrustedCertificate otherwise."""
    if leaf.version != x509.Version.v3:
        raise UntrustedCertificate(f"{_name(leaf)} is not an X.509 v3 certificate")
    if _is_ca(leaf):
        raise UntrustedCertificate(f"{_name(leaf)} is a CA certificate: expected an end-entity certificate")
    usage = _key_usage(leaf)
    if usage is None or not usage.digital_signature:
        # "The key usage MUST include Digital Signature"; the guide does not say how a certificate
        # without any keyUsage is treated, so the emulator takes the stricter reading and refuses it.
        raise UntrustedCertificate(f"{_name(leaf)} has no keyUsage with digitalSignature")
    if not leaf.subject.rdns:
        raise UntrustedCertificate(f"{_name(leaf)} has an empty subject, which Roles Anywhere does not support")
    _check_time(leaf, now)
    failures: list[str] = []
    path = _extend([leaf], list(intermediates), list(anchors), now, failures)
    if path is None:
        detail = (
            "; ".join(dict.fromkeys(failures)) or "no certificate in the chain or the trust anchor issued it"
        )
        raise UntrustedCertificate(f"no path from {_name(leaf)} to the trust anchor: {detail}")
    for certificate in path[:-1]:  # the anchor itself is trusted as configured
        _check_critical_extensions(certificate)
    for certificate in path:
        crl = revoking_crl(certificate, crls)
        if crl is not None:
            raise UntrustedCertificate(
                f"{_name(certificate)} is revoked by the trust anchor's CRL from {crl.issuer.rfc4514_string()!r}"
            )
    return path


def check_anchor_certificate(certificate: x509.Certificate) -> None:
    """UntrustedCertificate unless `certificate` may be a trust anchor's CA certificate.

    The User Guide's signature-validation rules for CA certificates (basicConstraints CA:TRUE,
    keyUsage with Certificate Sign, signed with SHA-256 or stronger; MD5 and SHA-1 refused), as
    CreateTrustAnchor applies them to a bundle. The guide does not say whether a CA certificate
    without any keyUsage is accepted; the stricter choice is made: keyUsage must be present.
    """
    if not _is_ca(certificate):
        raise UntrustedCertificate(f"{_name(certificate)} is not a CA (basicConstraints CA:TRUE missing)")
    usage = _key_usage(certificate)
    if usage is None or not usage.key_cert_sign:
        raise UntrustedCertificate(f"{_name(certificate)} has no keyUsage with keyCertSign")
    if not isinstance(certificate.signature_hash_algorithm, ACCEPTED_SIGNATURE_HASHES):
        raise UntrustedCertificate(
            f"{_name(certificate)} is signed with {_hash_name(certificate)}: "
            "expected SHA-256 or stronger"
        )


def _extend(path, intermediates, anchors, now, failures):
    current = path[-1]
    for anchor in anchors:
        if (
            anchor.subject == current.issuer
            and _issued_by(current, anchor, failures)
            and _usable_ca(anchor, now, len(path) - 1, failures)
        ):
            return [*path, anchor]
    if len(path) > MAX_INTERMEDIATES:
        failures.append(f"the chain is longer than {MAX_INTERMEDIATES} intermediates")
        return None
    for candidate in intermediates:
        if candidate in path or candidate.subject != current.issuer:
            continue
        if _issued_by(current, candidate, failures) and _usable_ca(candidate, now, len(path) - 1, failures):
            found = _extend([*path, candidate], intermediates, anchors, now, failures)
            if found:
                return found
    if not any(c.subject == current.issuer for c in [*intermediates, *anchors]):
        failures.append(
            f"issuer {current.issuer.rfc4514_string()!r} of {_name(current)} is neither in the chain "
            "nor in the trust anchor"
        )
    return None


def _check_critical_extensions(certificate: x509.Certificate) -> None:
    """PKIX (RFC 5280, 4.2): a certificate with a critical extension the verifier does not recognise
    must be rejected. The guide only says certificates are validated with the algorithms PKIX defines."""
    for extension in certificate.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise UntrustedCertificate(
                f"{_name(certificate)} has a critical extension {extension.oid.dotted_string} that is not recognised"
            )


def _issued_by(child: x509.Certificate, issuer: x509.Certificate, failures: list[str]) -> bool:
    if not isinstance(child.signature_hash_algorithm, ACCEPTED_SIGNATURE_HASHES):
        failures.append(
            f"{_name(child)} is signed with {_hash_name(child)}: expected SHA-256 or stronger"
        )
        return False
    try:
        child.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        failures.append(f"the signature on {_name(child)} does not verify with {_name(issuer)}'s key")
        return False


def _usable_ca(ca: x509.Certificate, now: dt.datetime, below: int, failures: list[str]) -> bool:
    """Whether `ca` may issue the path beneath it; `below` counts the intermediates under it."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        failures.append(f"{_name(ca)} is not a CA (basicConstraints CA:TRUE missing)")
        return False
    if constraints.path_length is not None and below > constraints.path_length:
        failures.append(
            f"{_name(ca)} allows {constraints.path_length} intermediates below it, the path has {below}"
        )
        return False
    usage = _key_usage(ca)
    if usage is not None and not usage.key_cert_sign:
        failures.append(f"{_name(ca)} has a keyUsage without keyCertSign")
        return False
    try:
        _check_time(ca, now)
    except UntrustedCertificate as error:
        failures.append(str(error))
        return False
    return True


def _check_time(certificate: x509.Certificate, now: dt.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise UntrustedCertificate(
            f"{_name(certificate)} is not valid before {certificate.not_valid_before_utc.isoformat()}"
        )
    if now > certificate.not_valid_after_utc:
        raise UntrustedCertificate(
            f"{_name(certificate)} expired at {certificate.not_valid_after_utc.isoformat()}"
        )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _name(certificate: x509.Certificate) -> str:
    return f"certificate {certificate.subject.rfc4514_string()!r} (serial {certificate.serial_number})"


def _hash_name(certificate: x509.Certificate) -> str:
    algorithm = certificate.signature_hash_algorithm
    return algorithm.name.upper() if algorithm else "no hash"
