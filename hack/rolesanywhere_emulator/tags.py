"""What Roles Anywhere takes from the authenticating certificate: principal tags and the source identity.

Principal tags, with a profile's default attribute mappings (User Guide, "Certificate attribute
mapping"):
- "x509Subject: maps all supported Relative Distinguished Names (RDNs) from an authenticating
  certificate's Subject into distinct PrincipalTag elements in the session", and x509Issuer the
  same for the Issuer. The supported RDNs are those the guide names: C, O, OU, ST, L and CN
  ("Mapping identities to your workloads") and UID (API reference, MappingRule: "such as CN, OU,
  or UID"). Other attributes (DC, emailAddress, ...) are not mapped.
- "x509SAN (Subject Alternative Name): maps the first value of the following types: DNS Names,
  Directory Name (DN), and URI Names"; the default rules are the specifiers DNS, URI and Name/*,
  so the directory name is split into its RDNs: x509SAN/Name/CN, x509SAN/Name/OU, ...
- An attribute with several values (e.g. two OUs) is one tag, its values joined by "/" in
  certificate order: OU=Security, OU=Engineering gives x509Subject/OU = "Security/Engineering".
- A value STS cannot carry as a session tag value (characters outside letters, spaces, digits and
  _ . : / = + - @, or longer than 256 characters) is dropped, as the guide says such values are.

Source identity (User Guide, trust model, "Source identity rules"): "CN=" and the subject's common
name when that fits STS's 64-character limit for a source identity; the bare common name when
only the prefix does not fit (62 to 64 characters); without a common name, "ID=" and the serial
number in hex, padded to an even number of digits (serial 291 gives "ID=0123").
"""

from __future__ import annotations

import unicodedata

from cryptography import x509
from cryptography.x509.oid import NameOID

#: The RDNs mapped to principal tags, by the name the tags use.
RDN_TAG_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.USER_ID: "UID",
}
MULTI_VALUE_SEPARATOR = "/"
#: STS session tag values: at most this long, made of letters, separators (spaces), numbers and these.
MAX_TAG_VALUE_CHARS = 256
TAG_VALUE_PUNCTUATION = frozenset("_.:/=+-@")
#: STS's limit on a source identity, and the prefixes Roles Anywhere puts before it.
MAX_SOURCE_IDENTITY_CHARS = 64
CN_PREFIX = "CN="
SERIAL_PREFIX = "ID="


def principal_tags(certificate: x509.Certificate) -> dict[str, str]:
    """The principal tags of a certificate, e.g. {"x509Subject/CN": "alice", "x509SAN/DNS": "a.example"}."""
    tags = _prefixed("x509Subject", name_tags(certificate.subject))
    tags.update(_prefixed("x509Issuer", name_tags(certificate.issuer)))
    tags.update(_prefixed("x509SAN", san_tags(certificate)))
    return tags


def name_tags(name: x509.Name) -> dict[str, str]:
    """The supported RDNs of a name, several values of one attribute joined by "/"."""
    values: dict[str, list[str]] = {}
    for attribute in name:
        key = RDN_TAG_NAMES.get(attribute.oid)
        if key:
            values.setdefault(key, []).append(str(attribute.value))
    joined = {key: MULTI_VALUE_SEPARATOR.join(parts) for key, parts in values.items()}
    return {key: value for key, value in joined.items() if is_valid_tag_value(value)}


def san_tags(certificate: x509.Certificate) -> dict[str, str]:
    """The first DNS name, the first URI, and the RDNs of the first directory name (as Name/<RDN>)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    tags = {}
    for key, kind in (("DNS", x509.DNSName), ("URI", x509.UniformResourceIdentifier)):
        values = san.get_values_for_type(kind)
        if values and is_valid_tag_value(values[0]):
            tags[key] = values[0]
    names = san.get_values_for_type(x509.DirectoryName)
    if names:
        tags.update(_prefixed("Name", name_tags(names[0])))
    return tags


def is_valid_tag_value(value: str) -> bool:
    """Whether STS accepts `value` as a session tag value ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*, at most 256)."""
    return len(value) <= MAX_TAG_VALUE_CHARS and all(
        c in TAG_VALUE_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in value
    )


def source_identity(certificate: x509.Certificate) -> str:
    """The session's source identity; ValueError for a common name longer than STS allows.

    The guide does not say what happens to a common name over 64 characters (RFC 5280's upper
    bound); the emulator takes the stricter view and refuses the certificate.
    """
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not common_names:
        digits = f"{certificate.serial_number:x}"
        return SERIAL_PREFIX + digits.zfill(len(digits) + len(digits) % 2)
    common_name = str(common_names[0].value)  # the guide speaks of one CN; the first one is used
    if len(CN_PREFIX + common_name) <= MAX_SOURCE_IDENTITY_CHARS:
        return CN_PREFIX + common_name
    if len(common_name) <= MAX_SOURCE_IDENTITY_CHARS:
        return common_name
    raise ValueError(
        f"the subject's common name has {len(common_name)} characters: "
        f"a source identity has at most {MAX_SOURCE_IDENTITY_CHARS}"
    )


def _prefixed(prefix: str, tags: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}/{key}": value for key, value in tags.items()}
