"""Status computation: conditions, certificate details, pod counts and the Events a person acts on."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from localcluster import pki
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_operator.status import Event, Observed, compute_status, count_pods, invalid_spec_status
from rolesanywhere_operator.verification import Verification

NOW = dt.datetime(2030, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
CA = pki.issue("shop-ca", now=NOW, is_ca=True)
LEAF = pki.issue(
    "s3-reader.shop", now=NOW, issuer=CA, client=True, serial=0xABCDEF, not_before=NOW - dt.timedelta(hours=1),
    valid_for=dt.timedelta(days=90),
)
ROLE = "arn:aws:iam::111122223333:role/s3-reader"


def binding(certificate: dict | None = None):
    return parse_binding(
        {
            "metadata": {"name": "s3-reader", "namespace": "shop", "uid": "uid-1", "generation": 3},
            "spec": {
                "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/"
                "11111111-2222-3333-4444-555555555555",
                "profileArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/"
                "66666666-7777-8888-9999-000000000000",
                "roleArn": ROLE,
                "certificate": certificate or {"issuerRef": {"name": "shop-ca"}},
            },
        }
    )


def tls_secret(cert: pki.Issued = LEAF, **extra: bytes) -> dict:
    data = {"tls.crt": cert.cert_pem + CA.cert_pem, "tls.key": cert.key_pem(), **extra}
    return {"metadata": {"name": "s"}, "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


#: What cert-manager's CertificateRequest holds: the issued certificate and its chain, no key.
ISSUED_PEM = LEAF.cert_pem + CA.cert_pem


def certificate(ready: str, message: str = "", issuing: dict | None = None) -> dict:
    conditions = [{"type": "Ready", "status": ready, "message": message}]
    if issuing:
        conditions.append({"type": "Issuing", **issuing})
    return {"status": {"conditions": conditions}}


def pod(ready: bool, phase: str = "Running", deleting: bool = False) -> dict:
    metadata = {"deletionTimestamp": "2030-05-01T11:00:00Z"} if deleting else {}
    return {
        "metadata": metadata,
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def condition(kind: str, status: str, reason: str, message: str) -> dict:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2030-05-01T12:00:00Z",
        "observedGeneration": 3,
    }


NOT_VERIFIED = (
    "Unknown",
    "VerificationDisabled",
    (
        "the operator makes no CreateSession for this binding (spec.verifyCredentials or the operator's "
        "--verify-credentials is off)"
    ),
)


def conditions(ready: tuple[str, str, str], cert: tuple[str, str, str], verified=NOT_VERIFIED) -> list:
    return [condition("Ready", *ready), condition("CertificateReady", *cert), condition("CredentialsVerified", *verified)]


ISSUED_MESSAGE = "serial abcdef, CN=s3-reader.shop, valid until 2030-07-30T11:00:00Z"
CERTIFICATE_STATUS = {
    "secretName": "rolesanywhere-s3-reader-tls",
    "serialNumber": "abcdef",
    "subject": "CN=s3-reader.shop",
    "notBefore": "2030-05-01T11:00:00Z",
    "notAfter": "2030-07-30T11:00:00Z",
}


def test_issued_certificate_makes_the_binding_ready():
    observed = Observed(
        generation=3,
        certificate=certificate("True"),
        issued_pem=ISSUED_PEM,
        pods=[pod(True), pod(False), pod(True, phase="Succeeded"), pod(True, deleting=True)],
    )
    status, events = compute_status(binding(), observed, None, NOW)
    ready_message = f"pods annotated rolesanywhere.dev/binding=s3-reader get credentials for {ROLE}"
    assert status == {
        "observedGeneration": 3,
        "conditions": conditions(("True", "Ready", ready_message), ("True", "Issued", ISSUED_MESSAGE)),
        "certificate": CERTIFICATE_STATUS,
        "pods": {"total": 2, "ready": 1, "summary": "1/2"},
    }
    assert events == [Event("Normal", "Ready", ready_message)]

    # Refreshing later with nothing changed: no Event, and the transition times stay.
    again, events = compute_status(binding(), observed, status, NOW + dt.timedelta(minutes=5))
    assert again == status
    assert events == []


def test_missing_issuer_is_an_event_naming_it():
    status, events = compute_status(binding(), Observed(generation=3, issuer_found=False, certificate=None), None, NOW)
    message = "Issuer shop-ca in namespace shop does not exist; create it or fix spec.certificate.issuerRef"
    assert status["conditions"] == conditions(("False", "IssuerNotFound", message), ("False", "IssuerNotFound", message))
    assert status["certificate"] == {"secretName": "rolesanywhere-s3-reader-tls"}
    assert status["pods"] == {"total": 0, "ready": 0, "summary": "0/0"}
    assert events == [Event("Warning", "IssuerNotFound", message)]


def test_missing_cluster_issuer_message_has_no_namespace():
    b = binding({"issuerRef": {"name": "corp", "kind": "ClusterIssuer"}})
    _, events = compute_status(b, Observed(generation=3, issuer_found=False), None, NOW)
    assert events == [
        Event("Warning", "IssuerNotFound", "ClusterIssuer corp does not exist; create it or fix spec.certificate.issuerRef")
    ]


def test_pending_certificate_is_not_an_event():
    observed = Observed(generation=3, certificate=certificate("False", "Issuing certificate as Secret does not exist"))
    status, events = compute_status(binding(), observed, None, NOW)
    message = "Certificate rolesanywhere-s3-reader: Issuing certificate as Secret does not exist"
    assert status["conditions"] == conditions(
        ("False", "CertificatePending", message), ("False", "CertificatePending", message)
    )
    assert events == []


def test_failed_issuance_is_an_event_with_cert_managers_message():
    observed = Observed(
        generation=3,
        certificate=certificate("False", issuing={"status": "False", "reason": "Failed", "message": "CA key mismatch"}),
    )
    status, events = compute_status(binding(), observed, None, NOW)
    message = "Certificate rolesanywhere-s3-reader: CA key mismatch"
    assert status["conditions"][0] == condition("Ready", "False", "CertificateFailed", message)
    assert events == [Event("Warning", "CertificateFailed", message)]


SECRET_REF = {"secretRef": {"name": "exported", "intermediatesKey": "chain.pem"}}


@pytest.mark.parametrize(
    "secret, reason, message",
    [
        (None, "SecretMissing", "Secret exported does not exist in namespace shop"),
        (
            tls_secret(),
            "SecretKeysMissing",
            "Secret exported lacks the key(s) chain.pem; expected tls.crt, tls.key, chain.pem",
        ),
        (
            {"data": {"tls.crt": base64.b64encode(b"junk").decode(), "tls.key": "eA==", "chain.pem": "eA=="}},
            "CertificateInvalid",
            "Secret exported key tls.crt is not a PEM certificate",
        ),
        (
            tls_secret(
                pki.issue("old", now=NOW, issuer=CA, serial=0x10, not_before=NOW - dt.timedelta(days=10),
                          valid_for=dt.timedelta(days=1)),
                **{"chain.pem": CA.cert_pem},
            ),
            "CertificateExpired",
            "the certificate in Secret exported (serial 10) expired at 2030-04-22T12:00:00Z",
        ),
    ],
)
def test_secret_ref_problems_are_events(secret, reason, message):
    status, events = compute_status(binding(SECRET_REF), Observed(generation=3, secret=secret), None, NOW)
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert ready["message"].startswith(message)
    assert [(e.type, e.reason) for e in events] == [("Warning", reason)]


def test_valid_secret_ref_is_ready():
    secret = tls_secret(**{"chain.pem": CA.cert_pem})
    status, _ = compute_status(binding(SECRET_REF), Observed(generation=3, secret=secret), None, NOW)
    assert status["conditions"][1] == condition("CertificateReady", "True", "SecretValid", ISSUED_MESSAGE)
    assert status["certificate"] == {**CERTIFICATE_STATUS, "secretName": "exported"}


def test_a_fixed_problem_then_a_new_one_each_post_once():
    failing, events1 = compute_status(binding(SECRET_REF), Observed(generation=3), None, NOW)
    still, events2 = compute_status(binding(SECRET_REF), Observed(generation=3), failing, NOW)
    assert [e.reason for e in events1] == ["SecretMissing"] and events2 == []
    assert still["conditions"][0]["lastTransitionTime"] == failing["conditions"][0]["lastTransitionTime"]


def test_invalid_spec_status():
    status, events = invalid_spec_status("binding shop/x: spec.roleArn: expected an IAM role ARN", 7, None, NOW)
    assert status == {
        "observedGeneration": 7,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "InvalidSpec",
                "message": "binding shop/x: spec.roleArn: expected an IAM role ARN",
                "lastTransitionTime": "2030-05-01T12:00:00Z",
                "observedGeneration": 7,
            },
            {
                "type": "CertificateReady",
                "status": "Unknown",
                "reason": "InvalidSpec",
                "message": "the spec must be fixed first",
                "lastTransitionTime": "2030-05-01T12:00:00Z",
                "observedGeneration": 7,
            },
        ],
    }
    assert events == [Event("Warning", "InvalidSpec", "binding shop/x: spec.roleArn: expected an IAM role ARN")]


def test_count_pods():
    assert count_pods([]) == {"total": 0, "ready": 0, "summary": "0/0"}
    assert count_pods([pod(True), pod(True), pod(False, phase="Pending"), pod(False, phase="Failed")]) == {
        "total": 3,
        "ready": 2,
        "summary": "2/3",
    }


def verified(accepted: bool, reason: str, message: str, *, serial: str = "abcdef", generation: int = 3):
    return Verification(serial, generation, NOW - dt.timedelta(minutes=1), accepted, reason, message)


def verifying(record: Verification | None) -> Observed:
    return Observed(
        generation=3, certificate=certificate("True"), issued_pem=ISSUED_PEM, verification_enabled=True,
        verification=record,
    )


def test_credentials_accepted_by_the_service_are_shown_and_kept_in_the_status():
    record = verified(True, "Accepted", f"CreateSession with certificate serial abcdef returned credentials for {ROLE}")
    status, _ = compute_status(binding(), verifying(record), None, NOW)
    assert status["conditions"][0]["status"] == "True"
    assert status["conditions"][2] == condition("CredentialsVerified", "True", "Accepted", record.message)
    assert Verification.from_status(status["verification"]) == record


@pytest.mark.parametrize("reason", ["CreateSessionRefused", "RoleSessionNameNotAccepted", "CertificateUnusable"])
def test_a_refusal_makes_the_binding_not_ready_with_the_services_message_and_an_event(reason):
    message = "CreateSession failed: HTTP 403 AccessDeniedException: Untrusted Signing Certificate"
    previous, _ = compute_status(binding(), verifying(verified(True, "Accepted", "ok")), None, NOW)
    status, events = compute_status(binding(), verifying(verified(False, reason, message)), previous, NOW)
    assert status["conditions"] == conditions(
        ("False", reason, message), ("True", "Issued", ISSUED_MESSAGE), ("False", reason, message)
    )
    assert events == [Event("Warning", reason, message)]


def test_an_unreachable_endpoint_leaves_the_binding_ready_and_the_verification_unknown():
    record = verified(False, "EndpointUnreachable", "CreateSession failed: ConnectError: refused")
    status, events = compute_status(binding(), verifying(record), None, NOW)
    assert status["conditions"][0]["status"] == "True"
    assert status["conditions"][2] == condition("CredentialsVerified", "Unknown", "EndpointUnreachable", record.message)
    assert [event.type for event in events] == ["Normal"]  # Ready; nothing to act on yet


@pytest.mark.parametrize("record", [None, verified(True, "Accepted", "old", serial="0123"),
                                    verified(True, "Accepted", "old spec", generation=2)])
def test_a_record_for_another_certificate_or_spec_is_pending(record):
    status, _ = compute_status(binding(), verifying(record), None, NOW)
    assert status["conditions"][2] == condition(
        "CredentialsVerified", "Unknown", "VerificationPending", "a CreateSession with certificate serial abcdef is due"
    )
    assert status["conditions"][0]["status"] == "True"


def test_no_verification_before_the_certificate_is_ready():
    observed = Observed(generation=3, certificate=certificate("False", "Issuing"), verification_enabled=True)
    status, _ = compute_status(binding(), observed, None, NOW)
    assert status["conditions"][2] == condition(
        "CredentialsVerified", "Unknown", "WaitingForCertificate", "verified once the certificate is ready"
    )


def test_a_secret_the_operator_may_not_read_leaves_the_binding_ready_and_says_what_is_unchecked():
    status, events = compute_status(binding(SECRET_REF), Observed(generation=3, secret_readable=False), None, NOW)
    by_type = {x["type"]: x for x in status["conditions"]}
    assert by_type["CertificateReady"]["status"] == "Unknown"
    assert by_type["CertificateReady"]["reason"] == "SecretNotReadable"
    assert "Secret exported in namespace shop" in by_type["CertificateReady"]["message"]
    assert "secretAccess.namespaces" in by_type["CertificateReady"]["message"]
    assert by_type["Ready"]["status"] == "True" and "not checked" in by_type["Ready"]["message"]
    assert [e.reason for e in events] == ["Ready"]


def test_a_verification_the_operator_may_not_sign_is_unknown_naming_the_grant():
    observed = Observed(generation=3, certificate=certificate("True"), issued_pem=ISSUED_PEM,
                        verification_enabled=True, secret_readable=False)
    status, _ = compute_status(binding(), observed, None, NOW)
    verified = next(x for x in status["conditions"] if x["type"] == "CredentialsVerified")
    assert (verified["status"], verified["reason"]) == ("Unknown", "SecretNotReadable")
    assert "secretAccess.namespaces" in verified["message"] and "spec.verifyCredentials: false" in verified["message"]
    assert status["conditions"][0]["status"] == "True"  # the certificate is fine: pods get credentials


def test_a_cluster_issuer_not_allowed_is_an_actionable_refusal():
    cluster_issuer = {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}
    status, events = compute_status(
        binding(cluster_issuer), Observed(generation=3, cluster_issuer_refused=True), None, NOW
    )
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ClusterIssuerNotAllowed")
    assert "ClusterIssuer corp-ca" in ready["message"] and "--allowed-cluster-issuers" in ready["message"]
    assert [e.reason for e in events] == ["ClusterIssuerNotAllowed"]


def test_an_issued_certificate_comes_from_the_certificate_request_not_the_secret():
    expired = pki.issue("s3-reader.shop", now=NOW - dt.timedelta(days=100), issuer=CA, client=True,
                        valid_for=dt.timedelta(days=90))
    status, _ = compute_status(
        binding(), Observed(generation=3, certificate=certificate("True"), issued_pem=expired.cert_pem), None, NOW
    )
    assert status["conditions"][1]["reason"] == "CertificateExpired"
    pending, _ = compute_status(binding(), Observed(generation=3, certificate=certificate("False")), None, NOW)
    assert pending["conditions"][1]["reason"] == "CertificatePending"


def test_a_certificate_the_api_server_refused_shows_the_servers_message():
    observed = Observed(generation=3, certificate_refused="admission webhook denied the request: no")
    status, events = compute_status(binding(), observed, None, NOW)
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "CertificateRefused")
    assert "admission webhook denied the request: no" in ready["message"]
    assert [e.reason for e in events] == ["CertificateRefused"]


def test_every_reason_is_declared_once_with_its_meaning_and_status_uses_only_declared_ones():
    import ast
    from pathlib import Path

    from rolesanywhere_operator import reasons

    assert set(reasons.ABOUT) == set(reasons.Reason), "each Reason needs its About (conditions, meaning)"
    source = Path(reasons.__file__).with_name("status.py")
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_Verdict" and len(node.args) >= 2:
            assert not isinstance(node.args[1], ast.Constant), (
                f"status.py:{node.lineno}: a condition reason must be a reasons.Reason member, not a string")


def _conditions_of(status: dict) -> dict:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_per_pod_binding_counts_the_pods_holding_a_certificate_and_verifies_nothing_itself():
    per_pod = binding({"issuerRef": {"name": "shop-ca"}, "identity": "Pod", "duration": "1h"})
    observed = Observed(generation=3, pods=[pod(True), pod(False)], pods_certified=1)
    status, events = compute_status(per_pod, observed, None, NOW)
    assert _conditions_of(status) == {
        "Ready": ("True", "Ready"),
        "CertificateReady": ("True", "PodCertificates"),
        "CredentialsVerified": ("Unknown", "KeysInPods"),
    }
    ready = next(c for c in status["conditions"] if c["type"] == "CertificateReady")
    assert ready["message"] == "each pod gets its own certificate from Issuer shop-ca, valid 1h; 1 of 2 pods hold a valid one"
    assert status["pods"] == {"total": 2, "ready": 1, "summary": "1/2, 1 certified", "certified": 1}
    assert status["certificate"] == {}  # no shared Secret, no shared certificate
    assert [e.reason for e in events] == ["Ready"]


def test_a_per_pod_binding_whose_issuer_is_missing_is_not_ready():
    per_pod = binding({"issuerRef": {"name": "shop-ca"}, "identity": "Pod"})
    status, events = compute_status(per_pod, Observed(generation=3, issuer_found=False), None, NOW)
    assert _conditions_of(status)["Ready"] == ("False", "IssuerNotFound")
    assert [(e.type, e.reason) for e in events] == [("Warning", "IssuerNotFound")]
