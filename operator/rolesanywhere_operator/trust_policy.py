"""The IAM trust policy that admits exactly one binding's certificate (pure).

Roles Anywhere assumes the role as the service principal, and needs sts:AssumeRole, sts:TagSession
and sts:SetSourceIdentity. `aws:SourceArn` pins the trust anchor, and the certificate's subject,
which Roles Anywhere passes as principal tags (aws:PrincipalTag/x509Subject/<attribute>), pins the
binding: another binding's certificate from the same CA has another subject and is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from .certificates import subject_tags
from .spec import Binding, IssuedCertificate

ROLES_ANYWHERE_PRINCIPAL = "rolesanywhere.amazonaws.com"
ACTIONS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")
#: Subject attributes the policy conditions on, when the certificate has them.
PINNED_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
}


class NoSubjectYet(ValueError):
    """A secretRef binding whose certificate the operator has not read yet: its subject is unknown."""


def build_trust_policy(binding: Binding, status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The trust policy document for the binding's role. A secretRef binding's subject comes from its
    status (status.certificate.subject, as the operator read it from the Secret)."""
    if isinstance(binding.certificate, IssuedCertificate):
        tags = subject_tags(binding)
    else:
        subject = ((status or {}).get("certificate") or {}).get("subject")
        if not subject:
            raise NoSubjectYet(
                f"binding {binding.namespace}/{binding.name}: status.certificate.subject is empty; the operator "
                f"records it once Secret {binding.secret_name} holds a certificate and the operator may read it"
            )
        tags = _tags_of(x509.Name.from_rfc4514_string(subject))
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ROLES_ANYWHERE_PRINCIPAL},
                "Action": list(ACTIONS),
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": binding.trust_anchor_arn},
                    "StringEquals": {f"aws:PrincipalTag/x509Subject/{key}": value for key, value in tags.items()},
                },
            }
        ],
    }


def _tags_of(subject: x509.Name) -> dict[str, str]:
    tags = {}
    for key, oid in PINNED_ATTRIBUTES.items():
        values = [str(attribute.value) for attribute in subject.get_attributes_for_oid(oid)]
        if values:
            tags[key] = "/".join(values)
    return tags
