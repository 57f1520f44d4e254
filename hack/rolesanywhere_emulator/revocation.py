"""A trust anchor's certificate revocation lists, as ImportCrl gives them to the service.

"A CRL is a list of certificates that have been revoked by the issuing certificate Authority (CA).
[...] IAM Roles Anywhere validates against the CRL before issuing credentials." (API reference,
ImportCrl). A CRL counts only when a CA certificate of the trust anchor signed it; the service
fetches nothing itself (no CRL distribution points, no OCSP).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

PEM_MARKER = b"-----BEGIN X509 CRL-----"


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER bytes; ValueError when it is neither."""
    if PEM_MARKER in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def crl_issuer(
    crl: x509.CertificateRevocationList, certificates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """The certificate among `certificates` whose key signed `crl`, if any."""
    for certificate in certificates:
        if certificate.subject == crl.issuer and crl.is_signature_valid(certificate.public_key()):
            return certificate
    return None


def revoking_crl(
    certificate: x509.Certificate, crls: Sequence[x509.CertificateRevocationList]
) -> x509.CertificateRevocationList | None:
    """The CRL (of the certificate's issuer) that lists the certificate's serial, if any."""
    for crl in crls:
        if crl.issuer == certificate.issuer and crl.get_revoked_certificate_by_serial_number(
            certificate.serial_number
        ):
            return crl
    return None
