"""Loading the workload's certificate and key: every supported format, and a clear error for each local problem."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import pkcs12
from localcluster import pki
from rolesanywhere_protocol import LocalCredentialError, check_validity, load_identity

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def issued():
    """One CA chain and a workload certificate per key kind, generated once for the module."""
    root = pki.issue("Identity Test Root", now=NOW, is_ca=True)
    intermediate = pki.issue("Identity Test Intermediate", now=NOW, issuer=root, is_ca=True)
    leaves = {
        kind: pki.issue(f"{kind}-workload", now=NOW, issuer=intermediate, key_kind=kind, client=True)
        for kind in ("rsa2048", "ec-p256", "ec-p384")
    }
    return {"root": root, "intermediate": intermediate, **leaves}


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def key_bytes(key, fmt, encoding=serialization.Encoding.PEM, passphrase: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, fmt, encryption)


PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 for RSA, SEC1 for EC


@pytest.mark.parametrize(
    ("kind", "fmt", "encoding", "passphrase", "marker"),
    [
        ("rsa2048", TRADITIONAL, serialization.Encoding.PEM, None, b"BEGIN RSA PRIVATE KEY"),
        ("rsa2048", PKCS8, serialization.Encoding.PEM, None, b"BEGIN PRIVATE KEY"),
        ("rsa2048", PKCS8, serialization.Encoding.PEM, PASSPHRASE, b"BEGIN ENCRYPTED PRIVATE KEY"),
        ("rsa2048", TRADITIONAL, serialization.Encoding.PEM, PASSPHRASE, b"Proc-Type: 4,ENCRYPTED"),
        ("rsa2048", PKCS8, serialization.Encoding.DER, None, b""),
        ("ec-p256", TRADITIONAL, serialization.Encoding.PEM, None, b"BEGIN EC PRIVATE KEY"),
        ("ec-p256", PKCS8, serialization.Encoding.PEM, PASSPHRASE, b"BEGIN ENCRYPTED PRIVATE KEY"),
        ("ec-p256", TRADITIONAL, serialization.Encoding.PEM, PASSPHRASE, b"Proc-Type: 4,ENCRYPTED"),
        ("ec-p384", PKCS8, serialization.Encoding.PEM, None, b"BEGIN PRIVATE KEY"),
        ("ec-p384", TRADITIONAL, serialization.Encoding.PEM, None, b"BEGIN EC PRIVATE KEY"),
    ],
    ids=[
        "rsa-pkcs1",
        "rsa-pkcs8",
        "rsa-pkcs8-encrypted",
        "rsa-pkcs1-encrypted",
        "rsa-pkcs8-der",
        "p256-sec1",
        "p256-pkcs8-encrypted",
        "p256-sec1-encrypted",
        "p384-pkcs8",
        "p384-sec1",
    ],
)
def test_loads_every_supported_key_format(issued, tmp_path, kind, fmt, encoding, passphrase, marker):
    leaf = issued[kind]
    data = key_bytes(leaf.key, fmt, encoding, passphrase)
    assert marker in data
    cert = write(tmp_path, "tls.crt", leaf.cert_pem)
    key = write(tmp_path, "tls.key", data)

    identity = load_identity(cert, key, passphrase=passphrase)

    assert identity.serial_number == leaf.cert.serial_number
    assert identity.subject == f"CN={kind}-workload"
    assert identity.algorithm == (
        "AWS4-X509-RSA-SHA256" if kind.startswith("rsa") else "AWS4-X509-ECDSA-SHA256"
    )
    assert identity.not_before == leaf.cert.not_valid_before_utc
    assert identity.not_after == leaf.cert.not_valid_after_utc


def test_a_passphrase_given_for_a_plain_key_is_ignored(issued, tmp_path):
    leaf = issued["ec-p256"]
    cert = write(tmp_path, "tls.crt", leaf.cert_pem)
    key = write(tmp_path, "tls.key", key_bytes(leaf.key, PKCS8))
    assert load_identity(cert, key, passphrase=PASSPHRASE).serial_number == leaf.cert.serial_number


def test_chain_comes_from_the_certificate_file_and_the_intermediates_file_without_duplicates(
    issued, tmp_path
):
    leaf = issued["ec-p256"]
    # as cert-manager writes tls.crt: the leaf followed by its issuer
    cert = write(tmp_path, "tls.crt", leaf.cert_pem + leaf.chain_pem)
    key = write(tmp_path, "tls.key", leaf.key_pem())
    extra = write(tmp_path, "chain.pem", leaf.chain_pem + issued["root"].cert_pem)

    identity = load_identity(cert, key, intermediates=extra)

    assert identity.certificate == leaf.cert
    assert identity.chain == [issued["intermediate"].cert, issued["root"].cert]


def test_loads_a_pkcs12_bundle_with_its_chain(issued, tmp_path):
    leaf = issued["rsa2048"]
    bundle = pkcs12.serialize_key_and_certificates(
        b"workload", leaf.key, leaf.cert, leaf.chain, serialization.BestAvailableEncryption(PASSPHRASE)
    )
    path = write(tmp_path, "workload.p12", bundle)

    identity = load_identity(None, None, pkcs12=path, passphrase=PASSPHRASE)

    assert identity.serial_number == leaf.cert.serial_number
    assert identity.chain == leaf.chain


# Every local problem, with the words the user needs: which file, and what is wrong or expected.


@pytest.fixture
def good_files(issued, tmp_path):
    leaf = issued["ec-p256"]
    return write(tmp_path, "tls.crt", leaf.cert_pem), write(tmp_path, "tls.key", leaf.key_pem())


def expect_error(match: str, *args, **kwargs) -> LocalCredentialError:
    with pytest.raises(LocalCredentialError, match=match) as caught:
        load_identity(*args, **kwargs)
    return caught.value


def test_missing_certificate_file(tmp_path, good_files):
    missing = tmp_path / "absent.crt"
    expect_error(rf"certificate file {missing} does not exist", missing, good_files[1])


def test_missing_private_key_file(tmp_path, good_files):
    missing = tmp_path / "absent.key"
    expect_error(rf"private key file {missing} does not exist", good_files[0], missing)


def test_certificate_path_is_a_directory(tmp_path, good_files):
    expect_error(rf"certificate file {tmp_path} is a directory: expected a file", tmp_path, good_files[1])


def test_unreadable_key_file(good_files):
    # a path below a regular file cannot be opened, whoever runs the test (root reads any mode bits)
    unreadable = good_files[0] / "tls.key"
    expect_error(rf"cannot read private key file {unreadable}: Not a directory", good_files[0], unreadable)


def test_empty_certificate_file(tmp_path, good_files):
    empty = write(tmp_path, "empty.crt", b"\n")
    expect_error(rf"certificate file {empty} is empty", empty, good_files[1])


def test_malformed_certificate_pem(tmp_path, good_files):
    bad = write(
        tmp_path, "bad.crt", b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    )
    expect_error(
        rf"certificate file {bad} is not valid PEM: .*expected one or more -----BEGIN CERTIFICATE-----",
        bad,
        good_files[1],
    )


def test_certificate_file_without_a_certificate(tmp_path, good_files):
    text = write(tmp_path, "notes.txt", b"hello, this is not a certificate")
    expect_error(rf"certificate file {text} holds no certificate: expected PEM", text, good_files[1])


def test_private_key_file_holding_a_certificate(good_files):
    cert = good_files[0]
    expect_error(rf"private key file {cert} holds no private key: expected a PEM block", cert, cert)


def test_malformed_private_key_pem(tmp_path, good_files):
    bad = write(tmp_path, "bad.key", b"-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n")
    expect_error(
        rf"private key file {bad} is not a valid private key .*expected an RSA or EC key", good_files[0], bad
    )


def test_encrypted_key_without_a_passphrase(issued, tmp_path, good_files):
    key = write(tmp_path, "enc.key", key_bytes(issued["ec-p256"].key, PKCS8, passphrase=PASSPHRASE))
    expect_error(rf"private key file {key} is encrypted but no passphrase was given", good_files[0], key)


@pytest.mark.parametrize("fmt", [PKCS8, TRADITIONAL], ids=["pkcs8", "traditional"])
def test_wrong_passphrase(issued, tmp_path, good_files, fmt):
    key = write(tmp_path, "enc.key", key_bytes(issued["ec-p256"].key, fmt, passphrase=PASSPHRASE))
    expect_error(
        rf"private key file {key} cannot be decrypted with the passphrase given: wrong passphrase\?",
        good_files[0],
        key,
        passphrase=b"wrong",
    )


def test_key_does_not_match_certificate(issued, tmp_path, good_files):
    other = write(tmp_path, "other.key", issued["ec-p384"].key_pem())
    error = expect_error(
        rf"private key in {other} does not match the certificate in {good_files[0]}", good_files[0], other
    )
    assert f"serial {issued['ec-p256'].cert.serial_number}" in str(error)


def test_unsupported_key_type(tmp_path, good_files):
    key = ed25519.Ed25519PrivateKey.generate()
    path = write(tmp_path, "ed.key", key_bytes(key, PKCS8))
    expect_error(
        rf"private key in {path} is a .*Ed25519.* key: Roles Anywhere accepts RSA keys and EC keys",
        good_files[0],
        path,
    )


def test_pkcs12_wrong_passphrase(issued, tmp_path):
    leaf = issued["ec-p256"]
    bundle = pkcs12.serialize_key_and_certificates(
        b"w", leaf.key, leaf.cert, None, serialization.BestAvailableEncryption(PASSPHRASE)
    )
    path = write(tmp_path, "w.p12", bundle)
    expect_error(
        rf"cannot open PKCS#12 bundle {path}: it is not a PKCS#12 file or the passphrase is wrong",
        None,
        None,
        pkcs12=path,
        passphrase=b"wrong",
    )


def test_missing_private_key_argument(good_files):
    expect_error(rf"no private key given for certificate {good_files[0]}", good_files[0], None)


def test_expired_certificate_names_the_file_and_the_certificate(issued, good_files):
    identity = load_identity(*good_files)
    later = identity.not_after + dt.timedelta(seconds=1)

    with pytest.raises(LocalCredentialError) as caught:
        check_validity(identity, later)

    message = str(caught.value)
    assert f"certificate in {good_files[0]}" in message
    assert "expired at" in message and "renew the certificate" in message
    assert f"serial {identity.serial_number}" in message and "CN=ec-p256-workload" in message


def test_certificate_not_yet_valid(good_files):
    identity = load_identity(*good_files)
    earlier = identity.not_before - dt.timedelta(minutes=1)
    with pytest.raises(
        LocalCredentialError, match=rf"certificate in {good_files[0]}.* is not valid yet: valid from"
    ):
        check_validity(identity, earlier)


def test_valid_certificate_passes_the_validity_check(good_files):
    identity = load_identity(*good_files)
    check_validity(identity, identity.not_before + dt.timedelta(minutes=1))
