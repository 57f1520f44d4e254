"""The emulator's certificate path validation: leaf, intermediates from X-Amz-X509-Chain, trust anchor CA."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from localcluster import pki
from rolesanywhere_emulator.trust import UntrustedCertificate, check_anchor_certificate, verify_path

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def pki_tree():
    root = pki.issue("Trust Root", now=NOW, is_ca=True, valid_for=30 * DAY)
    intermediate = pki.issue("Trust Intermediate", now=NOW, issuer=root, is_ca=True, valid_for=10 * DAY)
    stranger = pki.issue("Stranger Root", now=NOW, is_ca=True)
    return {"root": root, "intermediate": intermediate, "stranger": stranger}


def leaf(issuer, **options):
    options.setdefault("now", NOW)
    return pki.issue("workload", issuer=issuer, client=True, **options)


def untrusted(match: str, certificate, intermediates, anchors, now=NOW, crls=()) -> None:
    with pytest.raises(UntrustedCertificate, match=match):
        verify_path(certificate, intermediates, anchors, now, crls)


def test_leaf_issued_by_the_anchor(pki_tree):
    workload = leaf(pki_tree["root"])
    assert verify_path(workload.cert, [], [pki_tree["root"].cert], NOW) == [
        workload.cert,
        pki_tree["root"].cert,
    ]


def test_leaf_issued_by_an_intermediate_sent_in_the_chain(pki_tree):
    workload = leaf(pki_tree["intermediate"])
    path = verify_path(workload.cert, workload.chain, [pki_tree["root"].cert], NOW)
    assert path == [workload.cert, pki_tree["intermediate"].cert, pki_tree["root"].cert]


def test_an_intermediate_may_itself_be_the_trust_anchor(pki_tree):
    workload = leaf(pki_tree["intermediate"])
    assert (
        verify_path(workload.cert, [], [pki_tree["intermediate"].cert], NOW)[-1]
        == pki_tree["intermediate"].cert
    )


def test_intermediate_missing_from_the_chain(pki_tree):
    untrusted(
        "issuer 'CN=Trust Intermediate' .* is neither in the chain nor in the trust anchor",
        leaf(pki_tree["intermediate"]).cert,
        [],
        [pki_tree["root"].cert],
    )


def test_certificate_from_another_ca(pki_tree):
    untrusted(
        "no path from certificate 'CN=workload'", leaf(pki_tree["stranger"]).cert, [], [pki_tree["root"].cert]
    )


def test_forged_issuer_name_fails_the_signature_check(pki_tree):
    # same subject name as the trusted root, different key
    impostor = pki.issue("Trust Root", now=NOW, is_ca=True)
    untrusted("does not verify with", leaf(impostor).cert, [], [pki_tree["root"].cert])


def test_expired_leaf(pki_tree):
    workload = leaf(pki_tree["root"], valid_for=DAY)
    untrusted(
        "certificate 'CN=workload' .* expired at",
        workload.cert,
        [],
        [pki_tree["root"].cert],
        now=NOW + 2 * DAY,
    )


def test_leaf_not_yet_valid(pki_tree):
    workload = leaf(pki_tree["root"], not_before=NOW + DAY)
    untrusted("is not valid before", workload.cert, [], [pki_tree["root"].cert])


def test_expired_intermediate(pki_tree):
    workload = leaf(pki_tree["intermediate"], valid_for=30 * DAY)
    untrusted(
        "'CN=Trust Intermediate' .* expired at",
        workload.cert,
        workload.chain,
        [pki_tree["root"].cert],
        now=NOW + 15 * DAY,
    )


def test_ca_certificate_cannot_authenticate(pki_tree):
    untrusted(
        "is a CA certificate: expected an end-entity certificate",
        pki_tree["intermediate"].cert,
        [],
        [pki_tree["root"].cert],
    )


def test_intermediate_that_is_not_a_ca(pki_tree):
    not_a_ca = pki.issue("Not A CA", now=NOW, issuer=pki_tree["root"], is_ca=False)
    workload = pki.issue("workload", now=NOW, issuer=not_a_ca, client=True)
    untrusted("'CN=Not A CA' .* is not a CA", workload.cert, [not_a_ca.cert], [pki_tree["root"].cert])



def test_a_revoked_leaf_is_refused(pki_tree):
    """API reference, ImportCrl: "A CRL is a list of certificates that have been revoked by the issuing
    certificate Authority (CA). [...] IAM Roles Anywhere validates against the CRL before issuing
    credentials." """
    workload = leaf(pki_tree["root"])
    other = leaf(pki_tree["root"])
    crls = [pki.revocation_list(pki_tree["root"], workload.cert.serial_number, now=NOW)]
    untrusted("'CN=workload' .* is revoked by the trust anchor's CRL", workload.cert, [], [pki_tree["root"].cert],
              crls=crls)  # fmt: skip
    assert verify_path(other.cert, [], [pki_tree["root"].cert], NOW, crls)[0] == other.cert


def test_a_revoked_intermediate_is_refused(pki_tree):
    workload = leaf(pki_tree["intermediate"])
    crls = [pki.revocation_list(pki_tree["root"], pki_tree["intermediate"].cert.serial_number, now=NOW)]
    untrusted(
        "'CN=Trust Intermediate' .* is revoked", workload.cert, workload.chain, [pki_tree["root"].cert], crls=crls
    )


def test_a_crl_of_another_issuer_does_not_revoke(pki_tree):
    workload = leaf(pki_tree["root"])
    crls = [pki.revocation_list(pki_tree["stranger"], workload.cert.serial_number, now=NOW)]
    assert verify_path(workload.cert, [], [pki_tree["root"].cert], NOW, crls)[0] == workload.cert


def test_an_empty_subject_is_refused(pki_tree):
    """User Guide: certificates with an empty subject are "NOT yet supported" (even with a critical SAN)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(pki_tree["root"].cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.example.com")]), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .sign(pki_tree["root"].key, hashes.SHA256())
    )
    untrusted("has an empty subject", cert, [], [pki_tree["root"].cert])


def test_a_ca_certificate_may_be_a_trust_anchor(pki_tree):
    check_anchor_certificate(pki_tree["root"].cert)
    check_anchor_certificate(pki_tree["intermediate"].cert)


def self_signed_ca(*, ca=True, key_cert_sign: bool | None = True) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Anchor Candidate")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_cert_sign is not None:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, key_cert_sign, True, False, False), critical=True
        )
    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"ca": False}, "is not a CA"),
        ({"key_cert_sign": False}, "no keyUsage with keyCertSign"),
        ({"key_cert_sign": None}, "no keyUsage with keyCertSign"),
    ],
    ids=["not-a-ca", "no-key-cert-sign", "no-key-usage"],
)
def test_certificates_that_cannot_be_trust_anchors(options, reason):
    """User Guide, signature validation, as CreateTrustAnchor applies it to a bundle: CA certificates
    need basicConstraints CA:TRUE and keyUsage Certificate Sign, and SHA-256 or stronger signatures
    (SHA-1 and MD5 are refused)."""
    with pytest.raises(UntrustedCertificate, match=reason):
        check_anchor_certificate(self_signed_ca(**options))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to sign with SHA-1")
def test_a_sha1_self_signed_ca_cannot_be_a_trust_anchor(tmp_path):
    """SHA-1 signatures are refused (cryptography will not make one, so openssl does)."""
    pem = tmp_path / "sha1-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-sha1", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(pem), "-days", "2", "-subj", "/CN=SHA1 CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with pytest.raises(UntrustedCertificate, match="signed with SHA1: expected SHA-256 or stronger"):
        check_anchor_certificate(x509.load_pem_x509_certificate(pem.read_bytes()))


def end_entity(issuer: pki.Issued, *extensions: tuple[x509.ExtensionType, bool]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hand-made")]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer.key, hashes.SHA256())


DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def test_a_leaf_without_key_usage_is_refused(pki_tree):
    """User Guide, signature validation: "The key usage MUST include Digital Signature". Whether a
    certificate without keyUsage passes is not documented; the emulator takes the stricter reading."""
    untrusted("has no keyUsage with digitalSignature", end_entity(pki_tree["root"]), [], [pki_tree["root"].cert])
    accepted = end_entity(pki_tree["root"], (DIGITAL_SIGNATURE, True))
    assert verify_path(accepted, [], [pki_tree["root"].cert], NOW)[0] == accepted


def test_an_unrecognised_critical_extension_is_refused(pki_tree):
    """PKIX (RFC 5280, 4.2): a critical extension the verifier does not recognise makes the
    certificate unacceptable; a non-critical one is ignored."""
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    critical = end_entity(pki_tree["root"], (DIGITAL_SIGNATURE, True), (unknown, True))
    untrusted("critical extension 1.3.6.1.4.1.55555.1 that is not recognised", critical, [], [pki_tree["root"].cert])
    optional = end_entity(pki_tree["root"], (DIGITAL_SIGNATURE, True), (unknown, False))
    assert verify_path(optional, [], [pki_tree["root"].cert], NOW)[0] == optional
