"""Per-pod identity, pure: who is calling the identity endpoint, whether that pod may have a certificate,
what the certificate says, and the cert-manager CertificateRequest that issues it.

The caller is the pod its projected service-account token names (a TokenReview of that token, audience
rolesanywhere_protocol.pod_identity.TOKEN_AUDIENCE). The operator decides the subject and the SANs: the
binding's subject (CN, O = the namespace, OUs), as the shared certificate has, so a trust policy written for
the binding matches every pod; plus a URI SAN naming the pod (`spiffe_id`). The CSR only contributes its
public key. The adapter (identity_endpoint.py) does the I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from rolesanywhere_protocol.csr import certification_request_info
from rolesanywhere_protocol.pod_identity import TOKEN_AUDIENCE

from . import constants as c
from .spec import Binding, IssuedCertificate

#: TokenReview user.extra keys the API server sets for a token bound to a pod.
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
#: Key usages of a per-pod certificate: all Roles Anywhere needs (it signs requests as a TLS client would).
USAGES = ("digital signature", "client auth")

UNAUTHENTICATED, FORBIDDEN = 401, 403


class Refused(Exception):
    """The request is refused: `status` is the HTTP status, the message says why (for the sidecar's log and
    the Event); `pod` the (namespace, name) the Event is about, once known."""

    def __init__(self, status: int, message: str, pod: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.pod = pod


@dataclass(frozen=True)
class Caller:
    """The pod a valid token was issued for."""

    namespace: str
    service_account: str
    pod_name: str
    pod_uid: str

    @property
    def pod(self) -> tuple[str, str]:
        return self.namespace, self.pod_name


def token_review(token: str) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": [TOKEN_AUDIENCE]},
    }


def caller_of(review: Mapping[str, Any]) -> Caller:
    """The pod a TokenReview's answer names; Refused (401) unless the token is valid for our audience and
    bound to a pod."""
    status = review.get("status") or {}
    if not status.get("authenticated"):
        why = status.get("error") or "not authenticated"
        raise Refused(UNAUTHENTICATED, f"the token is not a valid service-account token for audience "
                                       f"{TOKEN_AUDIENCE}: {why}")
    if TOKEN_AUDIENCE not in (status.get("audiences") or []):
        raise Refused(UNAUTHENTICATED, f"the token is not meant for audience {TOKEN_AUDIENCE}")
    user = status.get("user") or {}
    username = str(user.get("username") or "")
    namespace, _, service_account = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    extra = user.get("extra") or {}
    pod_name, pod_uid = _first(extra.get(POD_NAME_EXTRA)), _first(extra.get(POD_UID_EXTRA))
    if not username.startswith(SERVICE_ACCOUNT_PREFIX) or not service_account:
        raise Refused(UNAUTHENTICATED, f"the token is not a service account's (user {username!r})")
    if not pod_name or not pod_uid:
        raise Refused(UNAUTHENTICATED, "the token is not bound to a pod: use the projected token the webhook mounts")
    return Caller(namespace=namespace, service_account=service_account, pod_name=pod_name, pod_uid=pod_uid)


def binding_of(caller: Caller, pod: Mapping[str, Any] | None) -> str:
    """The binding the caller's pod was injected for; Refused (403) unless that pod exists, is the one the
    token was issued for, and carries the operator's injection."""
    where = f"pod {caller.namespace}/{caller.pod_name}"
    if pod is None:
        raise Refused(FORBIDDEN, f"{where} does not exist (any more): its token outlived it", caller.pod)
    metadata = pod.get("metadata") or {}
    if metadata.get("uid") != caller.pod_uid:
        raise Refused(FORBIDDEN, f"{where} is not the pod the token was issued for (uid {caller.pod_uid}): "
                                 "that pod was deleted", caller.pod)
    if (pod.get("spec") or {}).get("serviceAccountName", "default") != caller.service_account:
        raise Refused(FORBIDDEN, f"{where} does not run as service account {caller.service_account}", caller.pod)
    binding = (metadata.get("annotations") or {}).get(c.INJECTED_ANNOTATION)
    if not binding:
        raise Refused(FORBIDDEN, f"{where} was not injected by the operator (no {c.INJECTED_ANNOTATION} "
                                 "annotation)", caller.pod)
    return str(binding)


def per_pod_certificate(binding: Binding | None, name: str, caller: Caller) -> IssuedCertificate:
    """The binding's spec.certificate, if it gives each pod its own; Refused (403) otherwise."""
    where = f"{c.KIND} {caller.namespace}/{name}"
    if binding is None:
        raise Refused(FORBIDDEN, f"{where}, which pod {caller.pod_name} was injected for, does not exist", caller.pod)
    certificate = binding.certificate
    if not isinstance(certificate, IssuedCertificate) or not certificate.per_pod:
        raise Refused(FORBIDDEN, f"{where} does not set spec.certificate.identity: {c.IDENTITY_POD}; its pods "
                                 "use the binding's shared certificate", caller.pod)
    return certificate


def spiffe_id(trust_domain: str, caller: Caller) -> str:
    """The URI SAN naming the pod: SPIFFE's Kubernetes form, with the pod's name (unique at any one time)."""
    return f"spiffe://{trust_domain}/ns/{caller.namespace}/sa/{caller.service_account}/pod/{caller.pod_name}"


def pod_subject(binding: Binding, certificate: IssuedCertificate) -> x509.Name:
    """The binding's subject, as its shared Certificate has it: O is always the namespace."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, binding.namespace)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in certificate.organizational_units]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, certificate.common_name))
    return x509.Name(attributes)


def decided_request_info(
    binding: Binding, certificate: IssuedCertificate, caller: Caller, trust_domain: str,
    csr: x509.CertificateSigningRequest,
) -> bytes:
    """The CertificationRequestInfo the operator issues for: its subject and SANs, the CSR's public key."""
    return certification_request_info(pod_subject(binding, certificate), [spiffe_id(trust_domain, caller)],
                                      csr.public_key())  # type: ignore[arg-type]  # EC/RSA checked inside


def build_certificate_request(
    binding: Binding, certificate: IssuedCertificate, caller: Caller, csr: x509.CertificateSigningRequest
) -> dict[str, Any]:
    """The CertificateRequest for one pod: garbage-collected with the pod, found again by its labels."""
    pem = csr.public_bytes(serialization.Encoding.PEM)
    return {
        "apiVersion": c.CERT_MANAGER_API_VERSION,
        "kind": "CertificateRequest",
        "metadata": {
            # generateName: a pod renews under its own name, and each request is a new object.
            "generateName": f"rolesanywhere-{caller.pod_name[:200]}-",
            "namespace": binding.namespace,
            "labels": {c.MANAGED_BY_LABEL: c.OPERATOR_NAME, c.BINDING_LABEL: binding.name,
                       c.POD_UID_LABEL: caller.pod_uid},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": caller.pod_name, "uid": caller.pod_uid}],
        },
        "spec": {
            "request": base64.b64encode(pem).decode("ascii"),
            "issuerRef": {"name": certificate.issuer.name, "kind": certificate.issuer.kind,
                          "group": certificate.issuer.group},
            "duration": certificate.duration,
            "usages": list(USAGES),
            "isCA": False,
        },
    }


def approval(request: Mapping[str, Any], now: str) -> dict[str, Any] | None:
    """The status patch approving a request (its conditions with Approved added); None when it is already
    approved or denied (cert-manager's own approver may have been first)."""
    conditions = list((request.get("status") or {}).get("conditions") or [])
    if any(cond.get("type") in ("Approved", "Denied") for cond in conditions):
        return None
    conditions.append({
        "type": "Approved", "status": "True", "reason": "PodIdentityVerified", "lastTransitionTime": now,
        "message": f"{c.OPERATOR_NAME} checked the pod's service-account token and its injection, and decided "
                   "the subject and SANs itself",
    })
    return {"status": {"conditions": conditions}}


@dataclass(frozen=True)
class Outcome:
    """Where a CertificateRequest stands: `issued` (PEM leaf, PEM chain) once signed; `failed` says why it
    never will be; neither while cert-manager works on it."""

    issued: tuple[str, str] | None = None
    failed: str | None = None


def outcome(request: Mapping[str, Any]) -> Outcome:
    status = request.get("status") or {}
    conditions = {cond.get("type"): cond for cond in status.get("conditions") or []}
    denied = conditions.get("Denied") or {}
    if denied.get("status") == "True":
        return Outcome(failed=f"denied: {denied.get('message') or denied.get('reason') or 'no reason given'}")
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "False" and ready.get("reason") in ("Failed", "Denied"):
        return Outcome(failed=f"{ready.get('reason', '').lower()}: {ready.get('message') or 'no message'}")
    if status.get("certificate") and ready.get("status") == "True":
        leaf = base64.b64decode(status["certificate"]).decode("ascii")
        chain = base64.b64decode(status.get("ca") or "").decode("ascii")
        return Outcome(issued=(leaf, _intermediates(leaf, chain)))
    return Outcome()


def _intermediates(leaf_pem: str, ca_pem: str) -> str:
    """What the sidecar sends along with the leaf: cert-manager's `ca` is the issuing CA, which Roles Anywhere
    finds in the trust anchor; only a CA that is not self-signed (an intermediate) goes along."""
    kept = [cert for cert in (x509.load_pem_x509_certificates(ca_pem.encode()) if ca_pem.strip() else [])
            if cert.issuer != cert.subject]
    already = leaf_pem.count("BEGIN CERTIFICATE") > 1  # cert-manager put the chain after the leaf itself
    return "" if already else "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in kept)


def valid_pod_certificates(requests: Sequence[Mapping[str, Any]], live_pod_uids: set[str], now: dt.datetime) -> int:
    """How many live pods hold an issued certificate valid `now`, from their CertificateRequests (one pod may
    have several while it renews)."""
    holding: set[str] = set()
    for request in requests:
        uid = ((request.get("metadata") or {}).get("labels") or {}).get(c.POD_UID_LABEL)
        if uid not in live_pod_uids or uid in holding:
            continue
        issued = outcome(request).issued
        if issued is None:
            continue
        try:
            leaf = x509.load_pem_x509_certificate(issued[0].encode())
        except ValueError:
            continue
        if leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
            holding.add(uid)
    return len(holding)


def _first(values: Any) -> str:
    return str(values[0]) if isinstance(values, list) and values else ""
