"""Principal tags and source identity, taken from real certificates as Roles Anywhere takes them."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rolesanywhere_emulator.policy import PolicyDenied, certificate_context, check_trust_policy
from rolesanywhere_emulator.tags import principal_tags, source_identity

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp CA")])


def certificate(attributes=(), san=(), serial=1234) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes]))
        .issuer_name(ISSUER)
        .public_key(KEY.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=not attributes)
    return builder.sign(KEY, hashes.SHA256())


def context(cert: x509.Certificate) -> dict[str, str]:
    return certificate_context(
        source_arn="arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta",
        source_account="123456789012",
        source_identity=source_identity(cert),
        principal_tags=principal_tags(cert),
    )


def allows(cert: x509.Certificate, condition: dict) -> bool:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "rolesanywhere.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
        "Condition": condition,
    }
    try:
        check_trust_policy({"Statement": [statement]}, context(cert))
    except PolicyDenied:
        return False
    return True


def test_several_values_of_one_attribute_are_one_tag_joined_by_a_slash():
    """User Guide, trust policy: a certificate with OU=Security, OU=Engineering, OU=Research gives
    the single tag x509Subject/OU = "Security/Engineering/Research" (values in certificate order)."""
    cert = certificate(
        [
            (NameOID.COMMON_NAME, "alice"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Security"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
        ]
    )
    assert principal_tags(cert)["x509Subject/OU"] == "Security/Engineering"
    key = "aws:PrincipalTag/x509Subject/OU"
    assert allows(cert, {"StringEquals": {key: "Security/Engineering"}})
    assert not allows(cert, {"StringEquals": {key: "Engineering"}})


def test_the_supported_rdns_are_mapped_uid_included():
    """User Guide, attribute mapping: "x509Subject: maps all supported Relative Distinguished Names
    (RDNs) from an authenticating certificate's Subject into distinct PrincipalTag elements"; the
    API's MappingRule names "CN, OU, or UID from the Subject field"."""
    cert = certificate(
        [
            (NameOID.COUNTRY_NAME, "DE"),
            (NameOID.STATE_OR_PROVINCE_NAME, "Berlin"),
            (NameOID.LOCALITY_NAME, "Berlin"),
            (NameOID.ORGANIZATION_NAME, "Example"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "Platform"),
            (NameOID.COMMON_NAME, "alice"),
            (NameOID.USER_ID, "u-1234"),
            (NameOID.DOMAIN_COMPONENT, "example"),  # not a mapped RDN
        ]
    )
    assert principal_tags(cert) == {
        "x509Subject/C": "DE",
        "x509Subject/ST": "Berlin",
        "x509Subject/L": "Berlin",
        "x509Subject/O": "Example",
        "x509Subject/OU": "Platform",
        "x509Subject/CN": "alice",
        "x509Subject/UID": "u-1234",
        "x509Issuer/CN": "Corp CA",
    }


def test_only_the_first_dns_uri_and_directory_name_of_the_san_are_tags():
    """User Guide, attribute mapping: "x509SAN (Subject Alternative Name): maps the first value of the
    following types: DNS Names, Directory Name (DN), and URI Names", with the default specifiers DNS,
    URI and Name/*: the directory name becomes x509SAN/Name/CN, x509SAN/Name/OU, ..."""
    directory = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"), x509.NameAttribute(NameOID.COMMON_NAME, "Alice")]
    )
    cert = certificate(
        [(NameOID.COMMON_NAME, "alice")],
        san=[
            x509.DNSName("a.example.com"),
            x509.DNSName("b.example.com"),
            x509.UniformResourceIdentifier("spiffe://example.org/ns/a/sa/app"),
            x509.UniformResourceIdentifier("spiffe://example.org/other"),
            x509.DirectoryName(directory),
            x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bob")])),
        ],
    )
    san = {k: v for k, v in principal_tags(cert).items() if k.startswith("x509SAN/")}
    assert san == {
        "x509SAN/DNS": "a.example.com",
        "x509SAN/URI": "spiffe://example.org/ns/a/sa/app",
        "x509SAN/Name/OU": "Ops",
        "x509SAN/Name/CN": "Alice",
    }
    assert not allows(cert, {"StringEquals": {"aws:PrincipalTag/x509SAN/DNS": "b.example.com"}})
    assert allows(cert, {"StringEquals": {"aws:PrincipalTag/x509SAN/Name/CN": "Alice"}})


def test_values_sts_cannot_carry_are_dropped():
    """User Guide, trust policy: values that do not fit STS's session tag value pattern
    ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*, at most 256 characters) are not mapped, so a condition on them fails."""
    cert = certificate([(NameOID.COMMON_NAME, "Smith, John"), (NameOID.ORGANIZATION_NAME, "Müller & Söhne")])
    tags = principal_tags(cert)
    assert "x509Subject/CN" not in tags and "x509Subject/O" not in tags
    assert not allows(cert, {"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "Smith, John"}})
    assert principal_tags(certificate([(NameOID.COMMON_NAME, "Jürgen Smith @ home: a=b+c/d_e.f-g")]))[
        "x509Subject/CN"
    ] == "Jürgen Smith @ home: a=b+c/d_e.f-g"


@pytest.mark.parametrize(
    ("attributes", "serial", "expected"),
    [
        ([(NameOID.COMMON_NAME, "alice")], 1, "CN=alice"),
        ([(NameOID.COMMON_NAME, "a" * 61)], 1, "CN=" + "a" * 61),
        ([(NameOID.COMMON_NAME, "b" * 62)], 1, "b" * 62),
        ([(NameOID.COMMON_NAME, "c" * 64)], 1, "c" * 64),
        ([(NameOID.ORGANIZATION_NAME, "no-cn")], 291, "ID=0123"),
        ([(NameOID.ORGANIZATION_NAME, "no-cn")], 0xABCD, "ID=abcd"),
    ],
    ids=["cn", "61-chars", "62-chars-bare", "64-chars-bare", "no-cn-padded", "no-cn-even"],
)
def test_source_identity_rules(attributes, serial, expected):
    """User Guide, "Source identity rules": "CN=" + the CN while that fits the 64-character limit, the
    bare CN for 62 to 64 characters, and "ID=" + the hex serial, left-padded to an even number of
    digits, when there is no CN (serial 291 gives ID=0123)."""
    cert = certificate(attributes, serial=serial)
    assert source_identity(cert) == expected
    assert context(cert)["sts:SourceIdentity"] == expected
