"""Per-pod identity's decisions (pod_certificates.py): who calls, whether its pod may have a certificate,
what the certificate says, and the CertificateRequest that issues it."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.pod_certificates import (
    Caller,
    Refused,
    approval,
    binding_of,
    build_certificate_request,
    caller_of,
    decided_request_info,
    outcome,
    per_pod_certificate,
    spiffe_id,
    token_review,
    valid_pod_certificates,
)
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_protocol.csr import sign_certification_request_info
from rolesanywhere_protocol.pod_identity import TOKEN_AUDIENCE

ARNS = {
    "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555",
    "profileArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000",
    "roleArn": "arn:aws:iam::111122223333:role/s3-reader",
}
CALLER = Caller(namespace="shop", service_account="reports", pod_name="reports-7d9f-x2k", pod_uid="uid-pod-1")
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def binding_body(identity: str = "Pod", **certificate) -> dict:
    return {
        "metadata": {"name": "s3-reader", "namespace": "shop", "uid": "uid-binding"},
        "spec": {**ARNS, "certificate": {"issuerRef": {"name": "shop-ca"}, "identity": identity,
                                         "organizationalUnits": ["reports"], **certificate}},
    }


def reviewed(*, authenticated: bool = True, audiences=(TOKEN_AUDIENCE,), username="system:serviceaccount:shop:reports",
             extra=None) -> dict:
    extra = {"authentication.kubernetes.io/pod-name": [CALLER.pod_name],
             "authentication.kubernetes.io/pod-uid": [CALLER.pod_uid]} if extra is None else extra
    return {"status": {"authenticated": authenticated, "audiences": list(audiences),
                       "user": {"username": username, "extra": extra}, **({} if authenticated else {"error": "expired"})}}


def injected_pod(**metadata) -> dict:
    return {"metadata": {"name": CALLER.pod_name, "namespace": "shop", "uid": CALLER.pod_uid,
                         "annotations": {c.INJECTED_ANNOTATION: "s3-reader"}, **metadata},
            "spec": {"serviceAccountName": "reports"}}


def test_the_token_review_asks_for_the_identity_audience_only():
    assert token_review("t0k")["spec"] == {"token": "t0k", "audiences": [TOKEN_AUDIENCE]}


def test_a_pod_bound_token_for_the_identity_audience_names_its_pod():
    assert caller_of(reviewed()) == CALLER


@pytest.mark.parametrize(
    ("review", "message"),
    [
        (reviewed(authenticated=False), f"not a valid service-account token for audience {TOKEN_AUDIENCE}: expired"),
        (reviewed(audiences=("https://kubernetes.default.svc",)), f"not meant for audience {TOKEN_AUDIENCE}"),
        (reviewed(username="alice"), "not a service account's (user 'alice')"),
        (reviewed(extra={}), "not bound to a pod"),
    ],
)
def test_tokens_that_do_not_name_a_pod_for_the_identity_audience_are_unauthenticated(review, message):
    with pytest.raises(Refused) as refused:
        caller_of(review)
    assert refused.value.status == 401
    assert message in str(refused.value)


def test_the_binding_is_the_one_the_pod_was_injected_for():
    assert binding_of(CALLER, injected_pod()) == "s3-reader"


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        (None, "pod shop/reports-7d9f-x2k does not exist (any more): its token outlived it"),
        (injected_pod(uid="uid-pod-2"), "is not the pod the token was issued for (uid uid-pod-1)"),
        (injected_pod(annotations={}), f"was not injected by the operator (no {c.INJECTED_ANNOTATION} annotation)"),
        ({**injected_pod(), "spec": {"serviceAccountName": "other"}}, "does not run as service account reports"),
    ],
)
def test_a_pod_that_is_gone_replaced_or_not_injected_is_forbidden(pod, message):
    with pytest.raises(Refused) as refused:
        binding_of(CALLER, pod)
    assert (refused.value.status, refused.value.pod) == (403, CALLER.pod)
    assert message in str(refused.value)


def test_only_a_per_pod_binding_issues_pod_certificates():
    assert per_pod_certificate(parse_binding(binding_body()), "s3-reader", CALLER).per_pod
    for binding, message in ((None, "does not exist"),
                             (parse_binding(binding_body("Shared")), "does not set spec.certificate.identity: Pod")):
        with pytest.raises(Refused) as refused:
            per_pod_certificate(binding, "s3-reader", CALLER)
        assert refused.value.status == 403 and message in str(refused.value)


def pod_csr(subject: x509.Name | None = None, uris: tuple[str, ...] = ()) -> tuple[x509.CertificateSigningRequest, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def test_the_operator_decides_subject_and_sans_whatever_the_csr_asks():
    binding = parse_binding(binding_body())
    certificate = per_pod_certificate(binding, "s3-reader", CALLER)
    greedy, key = pod_csr(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kube-system")]),
                          ("spiffe://cluster.local/ns/kube-system/sa/admin",))
    decided = decided_request_info(binding, certificate, CALLER, "example.org", greedy)
    assert decided != greedy.tbs_certrequest_bytes
    signed = sign_certification_request_info(decided, key)
    assert signed.is_signature_valid
    assert signed.subject.rfc4514_string() == "CN=s3-reader.shop,OU=reports,O=shop"
    san = signed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.org/ns/shop/sa/reports/pod/reports-7d9f-x2k"]
    # The re-signed CSR is what the operator decided: the next request goes through as it is.
    assert decided_request_info(binding, certificate, CALLER, "example.org", signed) == signed.tbs_certrequest_bytes


def test_the_certificate_request_holds_the_csr_and_goes_with_the_pod():
    binding = parse_binding(binding_body(duration="3m"))
    certificate = per_pod_certificate(binding, "s3-reader", CALLER)
    csr, _ = pod_csr()
    request = build_certificate_request(binding, certificate, CALLER, csr)
    assert request["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": CALLER.pod_name, "uid": CALLER.pod_uid}]
    assert request["metadata"]["labels"][c.POD_UID_LABEL] == CALLER.pod_uid
    assert request["metadata"]["labels"][c.BINDING_LABEL] == "s3-reader"
    assert base64.b64decode(request["spec"]["request"]) == csr.public_bytes(serialization.Encoding.PEM)
    assert request["spec"]["duration"] == "3m"
    assert request["spec"]["issuerRef"] == {"name": "shop-ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert spiffe_id("cluster.local", CALLER) == "spiffe://cluster.local/ns/shop/sa/reports/pod/reports-7d9f-x2k"


def test_approval_adds_approved_once():
    patch = approval({"status": {}}, "2026-12-03T12:00:00Z")
    assert patch is not None
    (approved,) = patch["status"]["conditions"]
    assert (approved["type"], approved["status"]) == ("Approved", "True")
    assert approval({"status": {"conditions": [approved]}}, "2026-12-03T12:00:01Z") is None


def _self_signed(not_after: dt.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(minutes=1))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def request_with(leaf: str, uid: str = CALLER.pod_uid, ready: str = "True") -> dict:
    return {"metadata": {"labels": {c.POD_UID_LABEL: uid}},
            "status": {"certificate": base64.b64encode(leaf.encode()).decode(),
                       "conditions": [{"type": "Ready", "status": ready, "reason": "Issued"}]}}


def test_outcome_of_a_request():
    leaf = _self_signed(NOW + dt.timedelta(hours=1))
    assert outcome(request_with(leaf)).issued == (leaf, "")
    assert outcome({"status": {}}) == outcome({})
    denied = {"status": {"conditions": [{"type": "Denied", "status": "True", "message": "policy says no"}]}}
    assert outcome(denied).failed == "denied: policy says no"
    failed = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Failed", "message": "CA gone"}]}}
    assert outcome(failed).failed == "failed: CA gone"


def test_pods_holding_a_valid_certificate_are_counted_once():
    valid, expired = _self_signed(NOW + dt.timedelta(hours=1)), _self_signed(NOW - dt.timedelta(seconds=1))
    requests = [request_with(valid), request_with(valid), request_with(expired, uid="uid-2"),
                request_with(valid, uid="uid-gone"), request_with(valid, uid="uid-3", ready="False")]
    assert valid_pod_certificates(requests, {CALLER.pod_uid, "uid-2", "uid-3"}, NOW) == 1
