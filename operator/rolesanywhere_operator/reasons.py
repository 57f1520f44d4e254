"""Every reason a binding's conditions carry, declared once: the conditions that use it, what it means,
and whether a person must act on it (a Warning Event is posted when Ready moves to an actionable reason).
README's reasons table is generated from `ABOUT`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

READY, CERTIFICATE_READY, CREDENTIALS_VERIFIED = "Ready", "CertificateReady", "CredentialsVerified"


class Reason(StrEnum):
    READY = "Ready"
    ISSUED = "Issued"
    SECRET_VALID = "SecretValid"
    CERTIFICATE_PENDING = "CertificatePending"
    ISSUER_NOT_FOUND = "IssuerNotFound"
    CLUSTER_ISSUER_NOT_ALLOWED = "ClusterIssuerNotAllowed"
    CERTIFICATE_REFUSED = "CertificateRefused"
    CERTIFICATE_FAILED = "CertificateFailed"
    SECRET_MISSING = "SecretMissing"
    SECRET_KEYS_MISSING = "SecretKeysMissing"
    SECRET_NOT_READABLE = "SecretNotReadable"
    CERTIFICATE_INVALID = "CertificateInvalid"
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_NOT_YET_VALID = "CertificateNotYetValid"
    INVALID_SPEC = "InvalidSpec"
    ACCEPTED = "Accepted"
    SESSION_NAME_NOT_ACCEPTED = "RoleSessionNameNotAccepted"
    CREATE_SESSION_REFUSED = "CreateSessionRefused"
    CERTIFICATE_UNUSABLE = "CertificateUnusable"
    ENDPOINT_UNREACHABLE = "EndpointUnreachable"
    VERIFICATION_PENDING = "VerificationPending"
    WAITING_FOR_CERTIFICATE = "WaitingForCertificate"
    VERIFICATION_DISABLED = "VerificationDisabled"
    POD_CERTIFICATES = "PodCertificates"
    KEYS_IN_PODS = "KeysInPods"


@dataclass(frozen=True)
class About:
    conditions: tuple[str, ...]
    meaning: str
    actionable: bool = False


_CERT = (CERTIFICATE_READY, READY)  # a certificate reason is also Ready's when it keeps the binding from working
_VERIFY = (CREDENTIALS_VERIFIED,)

ABOUT: dict[Reason, About] = {
    Reason.READY: About((READY,), "the binding gives pods credentials"),
    Reason.ISSUED: About((CERTIFICATE_READY,), "cert-manager issued the certificate and it is valid now"),
    Reason.SECRET_VALID: About((CERTIFICATE_READY,), "the secretRef Secret holds a complete certificate valid now"),
    Reason.CERTIFICATE_PENDING: About(_CERT, "cert-manager is working on the certificate"),
    Reason.ISSUER_NOT_FOUND: About(_CERT, "the issuer named by spec.certificate.issuerRef does not exist", True),
    Reason.CLUSTER_ISSUER_NOT_ALLOWED: About(
        _CERT, "the ClusterIssuer is not in the operator's allowlist (clusterIssuers.allowed)", True),
    Reason.CERTIFICATE_REFUSED: About(
        _CERT, "the API server refused the Certificate (cert-manager's webhook, a cluster policy); its message", True),
    Reason.CERTIFICATE_FAILED: About(_CERT, "cert-manager failed to issue the certificate; its message", True),
    Reason.SECRET_MISSING: About(_CERT, "the secretRef Secret does not exist", True),
    Reason.SECRET_KEYS_MISSING: About(_CERT, "the secretRef Secret lacks keys the binding names", True),
    Reason.SECRET_NOT_READABLE: About(
        (CERTIFICATE_READY, CREDENTIALS_VERIFIED),
        "Unknown: the operator may not read the binding's Secret there (secretAccess.namespaces), so it did not "
        "check it or verify with it; pods still get credentials"),
    Reason.CERTIFICATE_INVALID: About(_CERT, "the certificate is not a PEM certificate", True),
    Reason.CERTIFICATE_EXPIRED: About(_CERT, "the certificate's notAfter has passed", True),
    Reason.CERTIFICATE_NOT_YET_VALID: About(_CERT, "the certificate's notBefore has not come yet", True),
    Reason.INVALID_SPEC: About(_CERT, "the operator cannot use the spec; the message names the field", True),
    Reason.ACCEPTED: About(_VERIFY, "Roles Anywhere accepted a CreateSession with the certificate"),
    Reason.SESSION_NAME_NOT_ACCEPTED: About(
        (CREDENTIALS_VERIFIED, READY), "the profile refuses session names: set acceptRoleSessionName on it, or "
        "remove spec.roleSessionName", True),
    Reason.CREATE_SESSION_REFUSED: About(
        (CREDENTIALS_VERIFIED, READY), "the service refused the CreateSession (trust anchor, profile, role, trust "
        "policy, CRL); its message", True),
    Reason.CERTIFICATE_UNUSABLE: About(
        (CREDENTIALS_VERIFIED, READY), "the certificate or key in the Secret cannot sign a request", True),
    Reason.ENDPOINT_UNREACHABLE: About(_VERIFY, "Unknown: no answer from the endpoint, throttled, or a server error"),
    Reason.VERIFICATION_PENDING: About(_VERIFY, "Unknown: a CreateSession with the current certificate is due"),
    Reason.WAITING_FOR_CERTIFICATE: About(_VERIFY, "Unknown: verified once the certificate is ready"),
    Reason.VERIFICATION_DISABLED: About(
        _VERIFY, "Unknown: spec.verifyCredentials or the operator's --verify-credentials is off"),
    Reason.POD_CERTIFICATES: About(
        (CERTIFICATE_READY,), "identity Pod: each pod gets its own certificate from the issuer (status.pods.certified "
        "counts those holding a valid one)"),
    Reason.KEYS_IN_PODS: About(
        _VERIFY, "Unknown: identity Pod: only each pod holds its key, so the operator cannot sign a CreateSession; "
        "each sidecar's log and metrics show its own"),
}

#: Reasons a person must act on: Ready moving to one posts a Warning Event.
ACTIONABLE = frozenset(reason for reason, about in ABOUT.items() if about.actionable)


def reference_markdown() -> str:
    """The reasons table README carries: reason, the conditions that carry it, meaning."""
    rows = ["| Reason | Conditions | Meaning |", "| --- | --- | --- |"]
    for reason, about in ABOUT.items():
        warning = " (Warning Event)" if about.actionable else ""
        rows.append(f"| `{reason}` | {', '.join(about.conditions)} | {about.meaning}{warning} |")
    return "\n".join(rows) + "\n"
