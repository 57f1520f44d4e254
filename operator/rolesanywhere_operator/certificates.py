"""Build the cert-manager Certificate a binding owns (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import constants as c
from .spec import Binding, IssuedCertificate
from .status import Event, Observed


def owner_reference(binding: Binding) -> dict[str, Any]:
    """An ownerReference to the binding: deleting the binding garbage-collects what carries it."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": binding.name,
        "uid": binding.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def binding_labels(binding: Binding) -> dict[str, str]:
    return {c.MANAGED_BY_LABEL: c.OPERATOR_NAME, c.BINDING_LABEL: binding.name}


def subject_tags(binding: Binding) -> dict[str, str]:
    """The principal tags Roles Anywhere makes of the subject the operator issues (x509Subject/<attribute>):
    one value per attribute, several values (OUs) joined by "/" as the service joins them."""
    certificate = binding.certificate
    if not isinstance(certificate, IssuedCertificate):
        raise TypeError(f"binding {binding.namespace}/{binding.name} uses secretRef: its subject is the Secret's")
    tags = {"CN": certificate.common_name, "O": binding.namespace}
    if certificate.organizational_units:
        tags["OU"] = "/".join(certificate.organizational_units)
    return tags


def shared_issued(binding: Binding) -> bool:
    """Whether cert-manager issues the binding one Certificate (issuerRef with identity Shared)."""
    return isinstance(binding.certificate, IssuedCertificate) and not binding.per_pod


def build_certificate(binding: Binding) -> dict[str, Any]:
    """The Certificate for a binding whose spec.certificate has an issuerRef.

    The key is a fresh one on every renewal (rotationPolicy Always) and is a client-auth-only key:
    Roles Anywhere needs digital signature and client authentication, nothing more. The subject's O is
    always the binding's namespace, which the spec cannot set: the CN and OUs are free-form, so a trust
    policy conditioned on x509Subject/O is the one a binding in another namespace cannot satisfy.
    """
    certificate = binding.certificate
    if not isinstance(certificate, IssuedCertificate):
        raise TypeError(f"binding {binding.namespace}/{binding.name} uses secretRef: it has no Certificate")
    spec: dict[str, Any] = {
        "secretName": binding.secret_name,
        "secretTemplate": {"labels": binding_labels(binding)},
        "commonName": certificate.common_name,
        "usages": ["digital signature", "client auth"],
        "privateKey": {
            "algorithm": certificate.private_key_algorithm,
            "size": c.PRIVATE_KEY_SIZES[certificate.private_key_algorithm],
            "encoding": "PKCS8",
            "rotationPolicy": "Always",
        },
        "issuerRef": {
            "name": certificate.issuer.name,
            "kind": certificate.issuer.kind,
            "group": certificate.issuer.group,
        },
    }
    spec["subject"] = {"organizations": [binding.namespace]}
    if certificate.organizational_units:
        spec["subject"]["organizationalUnits"] = list(certificate.organizational_units)
    spec["duration"] = certificate.duration
    if certificate.renew_before:
        spec["renewBefore"] = certificate.renew_before
    return {
        "apiVersion": c.CERT_MANAGER_API_VERSION,
        "kind": "Certificate",
        "metadata": {
            "name": c.certificate_name(binding.name),
            "namespace": binding.namespace,
            "labels": binding_labels(binding),
            "ownerReferences": [owner_reference(binding)],
        },
        "spec": spec,
    }


def certificate_missing(binding: Binding, body: Mapping[str, Any], observed: Observed) -> bool:
    """Whether the binding needs its Certificate applied now: it has none and is not being deleted. That
    covers a new binding too, so one whose create event kopf has not handled (or missed) gets it from the
    periodic refresh as well."""
    deleting = (body.get("metadata") or {}).get("deletionTimestamp")
    return shared_issued(binding) and observed.certificate is None and not deleting


def missing_certificate_event(binding: Binding, body: Mapping[str, Any], observed: Observed) -> Event | None:
    """The Event to post when the binding's Certificate must be created again; None when it need not be.

    A Certificate is missing when someone (or a cert-manager reinstall, or a partial restore) deleted it.
    Not when the binding is new (its create handler applies it: kopf has not marked it handled yet) or is
    being deleted (the garbage collector is removing the Certificate on purpose).
    """
    metadata = body.get("metadata") or {}
    if not shared_issued(binding) or observed.certificate is not None:
        return None
    if metadata.get("deletionTimestamp") or c.LAST_HANDLED_ANNOTATION not in (metadata.get("annotations") or {}):
        return None
    return Event(
        "Warning",
        "CertificateRecreated",
        f"Certificate {c.certificate_name(binding.name)} was missing (deleted?); created it again",
    )
