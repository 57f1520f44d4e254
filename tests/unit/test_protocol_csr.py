"""The CSR the operator decides and the pod signs: cryptography and the signature check agree with it."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from rolesanywhere_protocol.csr import (
    certification_request_info,
    public_key_of_info,
    sign_certification_request_info,
)

SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.COMMON_NAME, "backup"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "team-a"),
])
URI = "spiffe://cluster.local/ns/team-a/sa/backup/pod/backup-7d9c"

KEYS = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def _spki(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_the_signed_csr_is_valid_and_names_what_the_operator_decided(kind):
    key = KEYS[kind]()
    info = certification_request_info(SUBJECT, [URI], key.public_key())

    csr = sign_certification_request_info(info, key)

    assert csr.is_signature_valid
    assert csr.subject == SUBJECT
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert _spki(csr) == _spki(key)
    assert csr.tbs_certrequest_bytes == info


def test_the_pod_can_read_its_own_public_key_back_from_the_info():
    key = KEYS["p256"]()
    info = certification_request_info(SUBJECT, [], key.public_key())
    assert public_key_of_info(info) == _spki(key)


def test_a_pod_refuses_to_sign_an_info_around_another_key():
    pod_key, other = KEYS["p256"](), KEYS["p256"]()
    info = certification_request_info(SUBJECT, [URI], other.public_key())
    with pytest.raises(ValueError, match="another public key"):
        sign_certification_request_info(info, pod_key)


@pytest.mark.parametrize("garbage", [b"", b"\x30", b"\x30\x05\x02\x01", b"\x04\x00", b"\x30\x00"])
def test_malformed_info_is_refused_with_a_clear_error(garbage):
    with pytest.raises(ValueError):
        public_key_of_info(garbage)


def test_long_subjects_use_long_form_lengths():
    key = KEYS["p256"]()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 60) for _ in range(8)])
    csr = sign_certification_request_info(certification_request_info(subject, [URI], key.public_key()), key)
    assert csr.is_signature_valid and csr.subject == subject
