"""Certificate signing requests whose content one side decides and the other side signs.

For per-pod identity (issue 15) the key lives only in the pod, yet the operator, not the pod, decides the
subject and names. cert-manager checks a CSR's signature, so the operator cannot rewrite a CSR itself:
it builds the CertificationRequestInfo it will accept (its subject and names around the pod's own
public key, `certification_request_info`), the pod checks that the info carries its key
(`public_key_of_info`) and signs it (`sign_certification_request_info`).

Functions over DER and cryptography's keys; nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .identity import PrivateKey, public_key_der

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: Where the public key sits in a CertificationRequestInfo: version, subject, subjectPKInfo, attributes.
_INFO_PUBLIC_KEY_INDEX = 2
#: DER tag of a SEQUENCE and of a BIT STRING.
_SEQUENCE, _BIT_STRING = 0x30, 0x03
#: DER AlgorithmIdentifiers of the signatures this module makes (RFC 5758; RFC 4055, with NULL parameters).
_ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_WITH_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")


def _read_tlv(der: bytes, offset: int) -> tuple[int, int, int]:
    """The (tag, start of content, end) of the DER element at `offset`; only what X.509 uses (short tags)."""
    if offset + 2 > len(der):
        raise ValueError("truncated DER: element header runs past the end")
    tag, first = der[offset], der[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(der):
            raise ValueError("DER length is indefinite, too long or truncated")
        length = int.from_bytes(der[offset:offset + count], "big")
        offset += count
    if offset + length > len(der):
        raise ValueError("truncated DER: element content runs past the end")
    return tag, offset, offset + length


def _encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def _sequence_elements(der: bytes) -> list[bytes]:
    """The encoded elements of the one SEQUENCE `der` holds."""
    tag, start, end = _read_tlv(der, 0)
    if tag != _SEQUENCE or end != len(der):
        raise ValueError("expected exactly one DER SEQUENCE")
    elements, offset = [], start
    while offset < end:
        _, _, element_end = _read_tlv(der, offset)
        elements.append(der[offset:element_end])
        offset = element_end
    return elements


def certification_request_info(subject: x509.Name, uris: Sequence[str], public_key: PublicKey) -> bytes:
    """The DER CertificationRequestInfo naming `subject` and the URI SANs `uris` around `public_key`.

    cryptography builds only signed CSRs, so this signs one with a throwaway key and swaps the pod's
    public key into its info: the rest of the encoding stays cryptography's. The throwaway key is always
    P-256 whatever the pod's key, as only its signature (discarded) depends on it, and it costs far less
    to make than an RSA key on the operator's path for every pod.
    """
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        # ValueError, as for every other input this module refuses
        raise ValueError(f"unsupported public key type {type(public_key).__name__}: expected EC or RSA")  # noqa: TRY004
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if uris:
        names = [x509.UniformResourceIdentifier(uri) for uri in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    template = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    elements = _sequence_elements(template.tbs_certrequest_bytes)
    elements[_INFO_PUBLIC_KEY_INDEX] = public_key_der(public_key)
    return _encode(_SEQUENCE, b"".join(elements))


def public_key_of_info(info: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo inside a CertificationRequestInfo, to compare with one's own."""
    elements = _sequence_elements(info)
    if len(elements) < 3:
        raise ValueError("not a CertificationRequestInfo: fewer than three elements")
    return elements[_INFO_PUBLIC_KEY_INDEX]


def _signature(info: bytes, private_key: PrivateKey) -> tuple[bytes, bytes]:
    """The (AlgorithmIdentifier, signature) of `private_key` over `info`: SHA-384 for curves above P-256."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if private_key.curve.key_size > 256:
            return _ECDSA_WITH_SHA384, private_key.sign(info, ec.ECDSA(hashes.SHA384()))
        return _ECDSA_WITH_SHA256, private_key.sign(info, ec.ECDSA(hashes.SHA256()))
    if isinstance(private_key, rsa.RSAPrivateKey):
        return _SHA256_WITH_RSA, private_key.sign(info, padding.PKCS1v15(), hashes.SHA256())
    raise ValueError(f"unsupported private key type {type(private_key).__name__}: expected EC or RSA")


def sign_certification_request_info(info: bytes, private_key: PrivateKey) -> x509.CertificateSigningRequest:
    """The CSR made by signing `info` with `private_key`, refused unless `info` carries that key's public half."""
    if public_key_of_info(info) != public_key_der(private_key.public_key()):
        raise ValueError("the CertificationRequestInfo offered names another public key than this pod's")
    algorithm, signature = _signature(info, private_key)
    der = _encode(_SEQUENCE, info + algorithm + _encode(_BIT_STRING, b"\x00" + signature))
    return x509.load_der_x509_csr(der)
