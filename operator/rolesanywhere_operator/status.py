"""A binding's status and the Events a person must act on, computed from what was observed (pure).

Conditions: CertificateReady (the certificate the sidecars present exists, is complete and is valid now),
CredentialsVerified (whether Roles Anywhere accepted a CreateSession the operator made with it;
verification.py) and Ready (the binding can give pods credentials: it mirrors the reason of a False
CertificateReady or CredentialsVerified). Each reason, the conditions that carry it and its meaning are
declared in reasons.py.

The operator reads no Secret to know the certificate of an issuerRef binding: cert-manager's Certificate
(conditions) and the CertificateRequest of its current revision (the issued certificate, no key) say it.

A Warning Event is posted when Ready moves to a reason in `reasons.ACTIONABLE` (once per transition, not
on every refresh), and a Normal Event when it becomes True.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from . import constants as c
from .reasons import ACTIONABLE, Reason
from .spec import Binding, IssuedCertificate, SecretCertificate
from .verification import Verification

#: How a cluster admin lets the operator read a namespace's Secrets; README explains the trade.
SECRET_ACCESS_HINT = (
    "to allow it, list the namespace in the chart's secretAccess.namespaces (a RoleBinding to the operator's "
    "secret-reader ClusterRole; README, What the operator may do)"
)


@dataclass(frozen=True)
class CertificateInfo:
    serial_number: str  # lowercase hex, even length; "" when not known (only the validity is)
    subject: str  # RFC 4514; "" when not known
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    """What the operator read from the API for one binding."""

    generation: int
    certificate: Mapping[str, Any] | None = None  # the cert-manager Certificate (issuerRef bindings)
    issuer_found: bool | None = None  # None: not checked (external issuer group, or no need)
    #: The certificate (PEM, no key) of the Certificate's current revision, from its CertificateRequest.
    issued_pem: bytes | None = None
    #: The secretRef binding's Secret; None when missing or not readable.
    secret: Mapping[str, Any] | None = None
    #: False when the API refused the operator the binding's Secret (no RoleBinding in that namespace).
    secret_readable: bool = True
    #: The API server's message refusing the binding's Certificate (cert-manager's webhook, a policy).
    certificate_refused: str | None = None
    #: The ClusterIssuer named by an issuerRef binding is not in the operator's allowlist.
    cluster_issuer_refused: bool = False
    pods: Sequence[Mapping[str, Any]] = ()
    #: Pods that opted in for the binding and were not injected (missed.py).
    missed: Sequence[Mapping[str, Any]] = ()
    #: Whether the operator verifies this binding's credentials (its setting and the binding's).
    verification_enabled: bool = False
    #: The latest verification call's record (new, or kept in the previous status).
    verification: Verification | None = None
    #: With identity Pod: live pods holding a valid certificate of their own (from their CertificateRequests).
    pods_certified: int = 0


@dataclass(frozen=True)
class _Verdict:
    status: str  # "True", "False", "Unknown"
    reason: str
    message: str


def parse_certificate(pem: bytes) -> CertificateInfo:
    """The first certificate of a PEM bundle (a Secret's tls.crt holds the leaf first)."""
    cert = x509.load_pem_x509_certificate(pem)
    serial = format(cert.serial_number, "x")
    return CertificateInfo(
        serial_number=serial.zfill(len(serial) + len(serial) % 2),
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def compute_status(
    binding: Binding, observed: Observed, previous: Mapping[str, Any] | None, now: dt.datetime
) -> tuple[dict[str, Any], list[Event]]:
    """The new status of `binding` and the Events to post, given its previous status."""
    per_pod = binding.per_pod
    if per_pod:
        info, verdict = None, _pod_identity_verdict(binding, observed)
    elif isinstance(binding.certificate, IssuedCertificate):
        info, issued_verdict = _check_issued(binding, observed, now)
        verdict = _issued_verdict(binding, observed, issued_verdict)
    else:
        info, verdict = _check_secret(binding, observed, now)
    certificate_status: dict[str, Any] = {} if per_pod else {"secretName": binding.secret_name}
    if info is not None:
        known = {"serialNumber": info.serial_number, "subject": info.subject}
        certificate_status.update({k: v for k, v in known.items() if v})
        certificate_status.update(notBefore=_timestamp(info.not_before), notAfter=_timestamp(info.not_after))
    pods = count_pods(observed.pods)
    if per_pod:
        pods.update(certified=observed.pods_certified, summary=f"{pods['summary']}, {observed.pods_certified} certified")
    credentials = (
        _Verdict("Unknown", Reason.KEYS_IN_PODS, "only each pod holds its key: each sidecar's log and metrics show "
                 "its CreateSession") if per_pod else _credentials_verdict(observed, info if verdict.status == "True" else None)
    )
    if verdict.status == "False":
        ready = _Verdict("False", verdict.reason, verdict.message)
    elif credentials.status == "False":
        ready = _Verdict("False", credentials.reason, credentials.message)
    else:
        unchecked = f" (not checked: {verdict.message})" if verdict.status == "Unknown" else ""
        ready = _Verdict(
            "True", Reason.READY,
            f"pods annotated {c.BINDING_ANNOTATION}={binding.name} get credentials for {binding.role_arn}{unchecked}",
        )
    verdicts = {
        c.CONDITION_READY: ready,
        c.CONDITION_CERTIFICATE_READY: verdict,
        c.CONDITION_CREDENTIALS_VERIFIED: credentials,
    }
    status = {
        "observedGeneration": observed.generation,
        "conditions": _conditions(verdicts, observed.generation, previous, now),
        "certificate": certificate_status,
        "pods": pods,
    }
    if observed.verification is not None:
        status["verification"] = observed.verification.to_status()
    return status, _events(previous, ready)


def _credentials_verdict(observed: Observed, certificate: CertificateInfo | None) -> _Verdict:
    """CredentialsVerified, for the certificate the sidecars present now (None: not usable yet)."""
    if not observed.verification_enabled:
        return _Verdict(
            "Unknown", Reason.VERIFICATION_DISABLED,
            "the operator makes no CreateSession for this binding (spec.verifyCredentials or the operator's "
            "--verify-credentials is off)",
        )
    if not observed.secret_readable:
        return _Verdict(
            "Unknown", Reason.SECRET_NOT_READABLE,
            f"the CreateSession is signed with the binding's key, and the operator may not read its Secret; "
            f"{SECRET_ACCESS_HINT}, or set spec.verifyCredentials: false",
        )
    if certificate is None:
        return _Verdict("Unknown", Reason.WAITING_FOR_CERTIFICATE, "verified once the certificate is ready")
    record = observed.verification
    # An unknown serial (the Certificate's request is gone) takes the record's: the call read it from the Secret.
    serial = certificate.serial_number or (record.serial_number if record else "")
    if record is None or (record.serial_number, record.generation) != (serial, observed.generation):
        return _Verdict(
            "Unknown", Reason.VERIFICATION_PENDING, f"a CreateSession with certificate serial {certificate.serial_number} is due"
        )
    if record.accepted:
        return _Verdict("True", record.reason, record.message)
    if record.reason == Reason.ENDPOINT_UNREACHABLE:
        return _Verdict("Unknown", record.reason, record.message)
    return _Verdict("False", record.reason, record.message)


def invalid_spec_status(
    message: str, generation: int, previous: Mapping[str, Any] | None, now: dt.datetime
) -> tuple[dict[str, Any], list[Event]]:
    """The status of a binding whose spec the operator cannot use."""
    ready = _Verdict("False", Reason.INVALID_SPEC, message)
    unknown = _Verdict("Unknown", Reason.INVALID_SPEC, "the spec must be fixed first")
    status = {
        "observedGeneration": generation,
        "conditions": _conditions(
            {c.CONDITION_READY: ready, c.CONDITION_CERTIFICATE_READY: unknown}, generation, previous, now
        ),
    }
    return status, _events(previous, ready)


def count_pods(pods: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Injected pods that exist (not finished, not being deleted), and how many of them are Ready."""
    live = [
        p
        for p in pods
        if not (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    ready = sum(
        1
        for p in live
        if any(
            cond.get("type") == "Ready" and cond.get("status") == "True"
            for cond in (p.get("status") or {}).get("conditions") or []
        )
    )
    return {"total": len(live), "ready": ready, "summary": f"{ready}/{len(live)}"}


def same_status(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two statuses say the same, so an unchanged status is not written again."""
    return _comparable(a or {}) == _comparable(b or {})


def _comparable(status: Mapping[str, Any]) -> dict[str, Any]:
    kept = ("observedGeneration", "conditions", "certificate", "pods", "verification")
    return {k: v for k, v in status.items() if k in kept}


def _check_issued(
    binding: Binding, observed: Observed, now: dt.datetime
) -> tuple[CertificateInfo | None, _Verdict]:
    """The certificate cert-manager issued for the binding's Certificate (its CertificateRequest's)."""
    name = c.certificate_name(binding.name)
    if observed.issued_pem is None:
        # A Certificate re-created over an up-to-date Secret issues nothing (no revision, no request): its
        # status still has the validity, and the serial is known once the Certificate renews.
        facts = (observed.certificate or {}).get("status") or {}
        if facts.get("notBefore") and facts.get("notAfter"):
            info = CertificateInfo("", "", _parse_time(facts["notBefore"]), _parse_time(facts["notAfter"]))
            return info, _validity(info, f"the certificate of Certificate {name}", Reason.ISSUED, now)
        return None, _Verdict("False", Reason.CERTIFICATE_PENDING, f"Certificate {name} has no issued certificate yet")
    try:
        info = parse_certificate(observed.issued_pem)
    except ValueError as error:
        return None, _Verdict("False", Reason.CERTIFICATE_INVALID, f"Certificate {name} issued no PEM certificate: {error}")
    return info, _validity(info, f"the certificate issued for Certificate {name}", Reason.ISSUED, now)


def _check_secret(binding: Binding, observed: Observed, now: dt.datetime) -> tuple[CertificateInfo | None, _Verdict]:
    """A secretRef binding's Secret: present, complete, and holding a certificate valid now."""
    name, secret = binding.secret_name, observed.secret
    if not observed.secret_readable:
        return None, _Verdict(
            "Unknown", Reason.SECRET_NOT_READABLE,
            f"the operator may not read Secret {name} in namespace {binding.namespace}; {SECRET_ACCESS_HINT}",
        )
    if secret is None:
        return None, _Verdict("False", Reason.SECRET_MISSING, f"Secret {name} does not exist in namespace {binding.namespace}")
    data = secret.get("data") or {}
    required = [c.TLS_CERT_KEY, c.TLS_KEY_KEY]
    if isinstance(binding.certificate, SecretCertificate):
        required += [k for k in (binding.certificate.intermediates_key, binding.certificate.passphrase_key) if k]
    missing = [key for key in required if not data.get(key)]
    if missing:
        return None, _Verdict(
            "False", Reason.SECRET_KEYS_MISSING, f"Secret {name} lacks the key(s) {', '.join(missing)}; expected {', '.join(required)}"
        )
    try:
        info = parse_certificate(base64.b64decode(data[c.TLS_CERT_KEY]))
    except (ValueError, binascii.Error) as error:
        return None, _Verdict(
            "False", Reason.CERTIFICATE_INVALID, f"Secret {name} key {c.TLS_CERT_KEY} is not a PEM certificate: {error}"
        )
    return info, _validity(info, f"the certificate in Secret {name}", Reason.SECRET_VALID, now)


def _validity(info: CertificateInfo, what: str, valid_reason: str, now: dt.datetime) -> _Verdict:
    """True (with `valid_reason`) while `now` is within the certificate's validity."""
    serial = f" (serial {info.serial_number})" if info.serial_number else ""
    if now >= info.not_after:
        return _Verdict("False", Reason.CERTIFICATE_EXPIRED, f"{what}{serial} expired at {_timestamp(info.not_after)}")
    if now < info.not_before:
        return _Verdict("False", Reason.CERTIFICATE_NOT_YET_VALID, f"{what}{serial} is valid from {_timestamp(info.not_before)}")
    described = ", ".join(x for x in (info.serial_number and f"serial {info.serial_number}", info.subject) if x)
    return _Verdict("True", valid_reason, f"{described + ', ' if described else ''}valid until {_timestamp(info.not_after)}")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, c.TIME_FORMAT).replace(tzinfo=dt.UTC)


def _issuer_verdict(binding: Binding, observed: Observed) -> _Verdict | None:
    """Why the binding's issuer cannot issue for it (not allowed, missing); None when nothing says so."""
    assert isinstance(binding.certificate, IssuedCertificate)
    issuer = binding.certificate.issuer
    if observed.cluster_issuer_refused:
        return _Verdict(
            "False", Reason.CLUSTER_ISSUER_NOT_ALLOWED,
            f"ClusterIssuer {issuer.name} is not one the operator lets bindings use (--allowed-cluster-issuers, "
            "chart value clusterIssuers.allowed); use a namespaced Issuer or ask a cluster admin to allow it",
        )
    if observed.issuer_found is False:
        where = "" if issuer.kind == "ClusterIssuer" else f" in namespace {binding.namespace}"
        return _Verdict(
            "False", Reason.ISSUER_NOT_FOUND,
            f"{issuer.kind} {issuer.name}{where} does not exist; create it or fix spec.certificate.issuerRef",
        )
    return None


def _pod_identity_verdict(binding: Binding, observed: Observed) -> _Verdict:
    assert isinstance(binding.certificate, IssuedCertificate)
    refused = _issuer_verdict(binding, observed)
    if refused is not None:
        return refused
    issuer = binding.certificate.issuer
    live = count_pods(observed.pods)["total"]
    return _Verdict(
        "True", Reason.POD_CERTIFICATES,
        f"each pod gets its own certificate from {issuer.kind} {issuer.name}, valid {binding.certificate.duration}; "
        f"{observed.pods_certified} of {live} pods hold a valid one",
    )


def _issued_verdict(binding: Binding, observed: Observed, issued: _Verdict) -> _Verdict:
    certificate_name = c.certificate_name(binding.name)
    refused = _issuer_verdict(binding, observed)
    if refused is not None and refused.reason == Reason.CLUSTER_ISSUER_NOT_ALLOWED:
        return refused
    if observed.certificate_refused:
        return _Verdict(
            "False", Reason.CERTIFICATE_REFUSED,
            f"the API server refused Certificate {certificate_name}: {observed.certificate_refused}; change the "
            "binding's spec.certificate",
        )
    if refused is not None:
        return refused
    if observed.certificate is None:
        return _Verdict("False", Reason.CERTIFICATE_PENDING, f"Certificate {certificate_name} is being created")
    conditions = {
        cond.get("type"): cond for cond in (observed.certificate.get("status") or {}).get("conditions") or []
    }
    ready, issuing = conditions.get("Ready", {}), conditions.get("Issuing", {})
    if ready.get("status") == "True" and issued.status == "True":
        return issued
    if issuing.get("status") == "False" and issuing.get("reason") == "Failed":
        return _Verdict(
            "False", Reason.CERTIFICATE_FAILED, f"Certificate {certificate_name}: {issuing.get('message', 'issuance failed')}"
        )
    if ready.get("status") == "True":
        return issued  # cert-manager says Ready, but what it issued is not valid now (or its request is gone)
    message = ready.get("message") or "waiting for cert-manager"
    return _Verdict("False", Reason.CERTIFICATE_PENDING, f"Certificate {certificate_name}: {message}")


def _conditions(
    verdicts: Mapping[str, _Verdict], generation: int, previous: Mapping[str, Any] | None, now: dt.datetime
) -> list[dict[str, Any]]:
    before = {cond.get("type"): cond for cond in (previous or {}).get("conditions") or []}
    conditions = []
    for kind, verdict in verdicts.items():
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == verdict.status else None
        conditions.append(
            {
                "type": kind,
                "status": verdict.status,
                "reason": verdict.reason,
                "message": verdict.message,
                "lastTransitionTime": since or _timestamp(now),
                "observedGeneration": generation,
            }
        )
    return conditions


def _events(previous: Mapping[str, Any] | None, ready: _Verdict) -> list[Event]:
    old: Mapping[str, Any] = next(
        (cond for cond in (previous or {}).get("conditions") or [] if cond.get("type") == c.CONDITION_READY), {}
    )
    if (old.get("status"), old.get("reason")) == (ready.status, ready.reason):
        return []
    if ready.status == "True":
        return [Event("Normal", Reason.READY, ready.message)]
    if ready.reason in ACTIONABLE:
        return [Event("Warning", ready.reason, ready.message)]
    return []


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(c.TIME_FORMAT)
