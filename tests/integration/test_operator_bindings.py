"""RolesAnywhereBinding on the real control plane with the real cert-manager: validation by the API
server, the Certificate, status, printer columns, Events and garbage collection."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from localcluster import pki
from rolesanywhere_devkit.operator import (
    EXAMPLE_ARNS,
    EXAMPLE_PROFILE,
    EXAMPLE_ROLE,
    binding,
    binding_status,
    ca_issuer,
    condition,
    grant_secret_read,
    install_crd,
)
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator.spec import parse_binding

TIMEOUT = 30


def events_for(cluster, namespace: str, name: str) -> list[tuple[str, str, str]]:
    result = cluster.kubectl(
        "get", "events", "-n", namespace, "-o", "json",
        f"--field-selector=involvedObject.kind=RolesAnywhereBinding,involvedObject.name={name}",
    )
    return [(e["type"], e["reason"], e["message"]) for e in json.loads(result.stdout)["items"]]


def wait_until_ready(cluster, namespace: str, name: str, reason: str = "Ready") -> dict:
    def ready():
        status = binding_status(cluster, namespace, name)
        return status if condition(status, "Ready").get("reason") == reason else None

    try:
        return wait_for(ready, timeout=TIMEOUT, what=f"binding {namespace}/{name} to report Ready reason {reason}")
    except Exception:
        print(json.dumps(binding_status(cluster, namespace, name), indent=1))
        print(cluster.kubectl("get", "certificate,certificaterequest,secret", "-n", namespace, "-o", "yaml").stdout)
        raise


REJECTED = [
    (
        "malformed trust anchor ARN",
        {"trustAnchorArn": "arn:aws:rolesanywhere:us-east-1:1234:trust-anchor/x"},
        ["spec.trustAnchorArn: Invalid value"],
    ),
    (
        "role in another partition",
        {"roleArn": "arn:aws-cn:iam::123456789012:role/s3-reader"},
        ["spec.roleArn: Invalid value", "must be in the same partition as spec.trustAnchorArn"],
    ),
    (
        "profile in another region",
        {"profileArn": EXAMPLE_PROFILE.replace("us-east-1", "eu-west-1")},
        ["spec.profileArn: Invalid value", "must be in the same region as spec.trustAnchorArn"],
    ),
    ("session too short", {"sessionDuration": 899}, ["spec.sessionDuration: Invalid value: 899"]),
    ("session too long", {"sessionDuration": 43201}, ["spec.sessionDuration: Invalid value: 43201"]),
    (
        "both issuerRef and secretRef",
        {"certificate": {"issuerRef": {"name": "ca"}, "secretRef": {"name": "s"}}},
        ["spec.certificate: Invalid value", "exactly one of spec.certificate.issuerRef and spec.certificate.secretRef"],
    ),
    (
        "secretRef name walking up the path",
        {"certificate": {"secretRef": {"name": "../../kube-system/secrets/x"}}},
        ["spec.certificate.secretRef.name: Invalid value"],
    ),
    (
        "issuerRef name walking up the path",
        {"certificate": {"issuerRef": {"name": "../../victim/issuers/ca"}}},
        ["spec.certificate.issuerRef.name: Invalid value"],
    ),
    (
        "secretRef key that is a path",
        {"certificate": {"secretRef": {"name": "s", "intermediatesKey": "../../etc/passwd"}}},
        ["spec.certificate.secretRef.intermediatesKey: Invalid value"],
    ),
    (
        "caBundle ConfigMap name walking up the path",
        {"sidecar": {"caBundle": {"configMapName": "../x", "key": ".."}}},
        ["spec.sidecar.caBundle.configMapName: Invalid value", "spec.sidecar.caBundle.key: Invalid value"],
    ),
    (
        "certificate shorter than cert-manager's minimum",
        {"certificate": {"issuerRef": {"name": "ca"}, "duration": "59m"}},
        ["spec.certificate.duration: Invalid value", "must be at least 1h"],
    ),
    (
        "renewal earlier than cert-manager's minimum",
        {"certificate": {"issuerRef": {"name": "ca"}, "renewBefore": "4m"}},
        ["spec.certificate.renewBefore: Invalid value", "must be at least 5m"],
    ),
    (
        "renewal not before expiry",
        {"certificate": {"issuerRef": {"name": "ca"}, "duration": "2h", "renewBefore": "2h"}},
        ["spec.certificate.renewBefore: Invalid value", "must be shorter than spec.certificate.duration"],
    ),
    (
        "renewal not before the default expiry",
        {"certificate": {"issuerRef": {"name": "ca"}, "renewBefore": "25h"}},
        ["spec.certificate.renewBefore: Invalid value", "must be shorter than spec.certificate.duration (default 24h)"],
    ),
    (
        "common name longer than cert-manager allows",
        {"certificate": {"issuerRef": {"name": "ca"}, "commonName": "c" * 65}},
        ["spec.certificate.commonName: Too long"],
    ),
    (
        "plain http endpoint without the opt-in",
        {"sidecar": {"endpoint": "http://ra.internal:8080"}},
        ["spec.sidecar.endpoint: Invalid value", "set spec.sidecar.allowInsecureEndpoint: true"],
    ),
    (
        "proxy URL with credentials",
        {"sidecar": {"proxy": {"httpsProxy": "http://svc:pw@proxy:3128"}}},
        ["spec.sidecar.proxy.httpsProxy: Invalid value", "holds credentials (user:password@)"],
    ),
    (
        "sidecar resources that are not quantities",
        {"sidecar": {"resources": {"requests": {"cpu": "lots", "bogus": 1}, "limits": {"memory": -1}}}},
        ["spec.sidecar.resources.requests.cpu: Invalid value", "spec.sidecar.resources.requests: Invalid value",
         "expected cpu, memory or ephemeral-storage", "spec.sidecar.resources.limits: Invalid value",
         "a quantity cannot be negative"],
    ),
    (
        "sidecar request above its limit",
        {"sidecar": {"resources": {"requests": {"memory": "128Mi"}, "limits": {"memory": "64Mi"}}}},
        ["spec.sidecar.resources: Invalid value", "each request must be at most its limit"],
    ),
    (
        "neither issuerRef nor secretRef",
        {"certificate": {}},
        ["spec.certificate: Invalid value", "exactly one of spec.certificate.issuerRef and spec.certificate.secretRef"],
    ),
]


@pytest.mark.parametrize("spec, messages", [(s, m) for _, s, m in REJECTED], ids=[i for i, _, _ in REJECTED])
def test_invalid_bindings_are_rejected_by_the_api_server_naming_the_field(cluster, spec, messages):
    install_crd(cluster)
    manifest = binding("invalid", **EXAMPLE_ARNS)
    manifest["spec"].update(spec)
    # A server-side dry run goes through the same validation (schema and CEL) and stores nothing.
    result = cluster.kubectl("create", "--dry-run=server", "-n", "default", "-f", "-", input=json.dumps(manifest),
                             check=False)
    assert result.returncode != 0, "the API server accepted an invalid binding"
    for message in messages:
        assert message in result.stderr


def test_a_default_common_name_longer_than_64_characters_is_refused_naming_the_field(cluster):
    install_crd(cluster)
    # "default" is 7 characters: a 57-character binding name makes the default CN 65 long.
    manifest = binding("a" * 57, **EXAMPLE_ARNS)

    def create(manifest: dict):
        return cluster.kubectl("create", "--dry-run=server", "-n", "default", "-f", "-",
                               input=json.dumps(manifest), check=False)

    # A new ValidatingAdmissionPolicy takes effect within moments of being created: wait for it.
    refused = wait_for(lambda: (r := create(manifest)).returncode != 0 and r, timeout=TIMEOUT,
                       what="the ValidatingAdmissionPolicy to refuse the binding")
    assert f"spec.certificate.commonName: the default <binding>.<namespace>, {'a' * 57}.default, is longer" in (
        refused.stderr
    )
    assert create(binding("a" * 56, **EXAMPLE_ARNS)).returncode == 0
    manifest["spec"]["certificate"]["commonName"] = "reports"
    assert create(manifest).returncode == 0


def test_a_binding_without_a_duration_gets_a_24h_certificate(cluster, namespace, operator):
    cluster.apply(binding("day", **EXAMPLE_ARNS), namespace)
    certificate = wait_for(
        lambda: cluster.kubectl("get", "certificate", "rolesanywhere-day", "-n", namespace, "-o", "json",
                                check=False).stdout,
        timeout=TIMEOUT, what="the binding's Certificate",
    )
    assert json.loads(certificate)["spec"]["duration"] == "24h"


@pytest.mark.parametrize("spec", [
    {},
    {"sidecar": {"endpoint": "http://ra.internal:8080", "allowInsecureEndpoint": True,
                 "proxy": {"httpsProxy": "http://proxy:3128/path@x"},
                 "resources": {"requests": {"cpu": "10m", "memory": 33554432}, "limits": {"memory": "0.5Gi"}}}},
], ids=["minimal", "sidecar options"])
def test_a_valid_binding_passes_the_same_validation(cluster, spec):
    install_crd(cluster)
    manifest = binding("valid", **EXAMPLE_ARNS)
    manifest["spec"].update(spec)
    result = cluster.kubectl("create", "--dry-run=server", "-n", "default", "-f", "-", input=json.dumps(manifest))
    assert "created (server dry run)" in result.stdout
    parse_binding({**manifest, "metadata": {"name": "valid", "namespace": "default"}})  # the operator agrees


def test_a_binding_with_a_ca_issuer_becomes_ready_and_kubectl_shows_it(cluster, namespace, operator):
    ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
    cluster.apply(binding("s3-reader", **EXAMPLE_ARNS, sessionDuration=900), namespace)
    status = wait_until_ready(cluster, namespace, "s3-reader")

    secret = cluster.get("secret", "rolesanywhere-s3-reader-tls", namespace)
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    serial = format(cert.serial_number, "x")
    serial = serial.zfill(len(serial) + len(serial) % 2)
    not_after = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["certificate"] == {
        "secretName": "rolesanywhere-s3-reader-tls",
        "serialNumber": serial,
        "subject": f"CN=s3-reader.{namespace},O={namespace}",
        "notBefore": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notAfter": not_after,
    }
    assert condition(status, "CertificateReady")["reason"] == "Issued"

    table = cluster.kubectl("get", "rolesanywherebindings", "-n", namespace, "-o", "wide").stdout.splitlines()
    header = table[0].split()
    assert header == ["NAME", "READY", "VERIFIED", "ROLE", "CERT", "EXPIRY", "PODS", "AGE", "CERT", "SERIAL", "REASON",
                      "POD", "CERTS"]
    row = table[1].split()
    # This operator makes no CreateSession (its example ARNs resolve nowhere): VERIFIED is Unknown.
    assert row[:6] == ["s3-reader", "True", "Unknown", EXAMPLE_ROLE, not_after, "0/0"]
    assert row[7:] == [serial, "Ready"]  # POD CERTS is empty: a shared certificate has no per-pod ones
    assert condition(status, "CredentialsVerified")["reason"] == "VerificationDisabled"

    certificate = cluster.get("certificate", "rolesanywhere-s3-reader", namespace)
    owner = certificate["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("RolesAnywhereBinding", "s3-reader", True)
    assert ("Normal", "Ready", f"pods annotated rolesanywhere.dev/binding=s3-reader get credentials for {EXAMPLE_ROLE}") in (
        events_for(cluster, namespace, "s3-reader")
    )


def test_a_missing_issuer_is_reported_and_the_binding_recovers_when_it_appears(cluster, namespace, operator):
    cluster.apply(binding("reports", **EXAMPLE_ARNS), namespace)
    status = wait_until_ready(cluster, namespace, "reports", reason="IssuerNotFound")
    message = f"Issuer ca in namespace {namespace} does not exist; create it or fix spec.certificate.issuerRef"
    assert condition(status, "Ready")["message"] == message
    wait_for(
        lambda: ("Warning", "IssuerNotFound", message) in events_for(cluster, namespace, "reports"),
        timeout=TIMEOUT,
        what="the IssuerNotFound Event",
    )
    ca_issuer(cluster, namespace, pki.issue("late CA", now=dt.datetime.now(dt.UTC), is_ca=True))
    wait_until_ready(cluster, namespace, "reports")


def exported_secret(namespace: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    leaf = pki.issue("exported", now=now, issuer=pki.issue("private CA", now=now, is_ca=True), client=True)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "from-private-ca"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": leaf.cert_pem.decode(), "tls.key": leaf.key_pem().decode()},
    }


def test_a_secret_ref_binding_reports_a_missing_secret_then_uses_it(cluster, namespace, operator):
    grant_secret_read(cluster, namespace)
    manifest = binding("exported", **EXAMPLE_ARNS)
    manifest["spec"]["certificate"] = {"secretRef": {"name": "from-private-ca"}}
    cluster.apply(manifest, namespace)
    status = wait_until_ready(cluster, namespace, "exported", reason="SecretMissing")
    assert condition(status, "Ready")["message"] == f"Secret from-private-ca does not exist in namespace {namespace}"

    cluster.apply(exported_secret(namespace), namespace)
    status = wait_until_ready(cluster, namespace, "exported")  # the resync finds it; Secrets are not watched
    assert condition(status, "CertificateReady")["reason"] == "SecretValid"
    assert status["certificate"]["subject"] == "CN=exported"


def test_without_a_grant_the_operator_reads_no_secret_and_the_status_says_what_it_did_not_check(
    cluster, namespace, operator
):
    # The chart's ClusterRole reads no Secret: an issuerRef binding is Ready from the Certificate and its
    # CertificateRequest alone, and a secretRef one is Ready with its check marked as not done.
    ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
    cluster.apply(binding("issued", **EXAMPLE_ARNS), namespace)
    issued = wait_until_ready(cluster, namespace, "issued")
    assert condition(issued, "CertificateReady")["reason"] == "Issued"
    assert issued["certificate"]["subject"] == f"CN=issued.{namespace},O={namespace}"
    assert issued["certificate"]["serialNumber"]

    cluster.apply(exported_secret(namespace), namespace)
    manifest = binding("exported", **EXAMPLE_ARNS)
    manifest["spec"]["certificate"] = {"secretRef": {"name": "from-private-ca"}}
    cluster.apply(manifest, namespace)
    status = wait_until_ready(cluster, namespace, "exported")
    unchecked = condition(status, "CertificateReady")
    assert (unchecked["status"], unchecked["reason"]) == ("Unknown", "SecretNotReadable")
    assert f"may not read Secret from-private-ca in namespace {namespace}" in unchecked["message"]
    forbidden = cluster.kubectl("auth", "can-i", "get", "secrets", "-n", namespace,
                                "--as=system:serviceaccount:rolesanywhere-system:rolesanywhere-operator", check=False)
    assert forbidden.stdout.strip() == "no"


def test_a_deleted_certificate_is_created_again_with_a_warning(cluster, namespace, operator):
    ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
    cluster.apply(binding("kept", **EXAMPLE_ARNS), namespace)
    wait_until_ready(cluster, namespace, "kept")
    before = cluster.get("certificate", "rolesanywhere-kept", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "certificate", "rolesanywhere-kept", "-n", namespace)

    def recreated() -> bool:
        result = cluster.kubectl("get", "certificate", "rolesanywhere-kept", "-n", namespace, "-o", "json", check=False)
        return result.returncode == 0 and json.loads(result.stdout)["metadata"]["uid"] != before

    # Within one resync (2 s here) at the latest; the deletion event usually brings it back sooner.
    wait_for(recreated, timeout=TIMEOUT, what="the deleted Certificate to be created again")
    message = "Certificate rolesanywhere-kept was missing (deleted?); created it again"
    wait_for(lambda: ("Warning", "CertificateRecreated", message) in events_for(cluster, namespace, "kept"),
             timeout=TIMEOUT, what="the CertificateRecreated Event")
    wait_until_ready(cluster, namespace, "kept")


def test_deleting_a_binding_deletes_its_certificate_and_secret(cluster, namespace, operator):
    ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
    cluster.apply(binding("short-lived", **EXAMPLE_ARNS), namespace)
    wait_until_ready(cluster, namespace, "short-lived")
    cluster.kubectl("delete", "rab", "short-lived", "-n", namespace)

    def gone() -> bool:
        certificates = cluster.kubectl("get", "certificates", "-n", namespace, "-o", "name").stdout
        secret = cluster.kubectl("get", "secret", "rolesanywhere-short-lived-tls", "-n", namespace, check=False)
        return certificates == "" and secret.returncode != 0

    # The garbage collector notices a newly installed CRD only on its next discovery resync (every 30 s),
    # so on a fresh control plane this can take that long once.
    wait_for(gone, timeout=90, what="the garbage collector to delete the Certificate and its Secret")


def test_the_crd_in_crds_is_what_the_cluster_serves(cluster):
    install_crd(cluster)
    served = cluster.get("crd", "rolesanywherebindings.rolesanywhere.dev")
    names = served["spec"]["names"]
    assert (names["kind"], names["shortNames"], served["spec"]["scope"]) == (
        "RolesAnywhereBinding", ["rab"], "Namespaced"
    )


def test_a_certificate_the_api_server_refuses_is_shown_with_its_message_and_applied_once_allowed(
    cluster, namespace, operator
):
    # A cluster policy (as a cluster's own Kyverno or OpenShift rules would) refusing this namespace's
    # Certificates: the binding says so with the server's message, not an endless retry with no status.
    name = f"refuse-{namespace}"[:63]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"],
                                                         "operations": ["CREATE", "UPDATE"],
                                                         "resources": ["certificates"]}]},
                 "validations": [{"expression": "false", "message": "certificates need the security team's OK"}]},
    }
    policy_binding = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": [policy, policy_binding]}))
    try:
        ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))

        def refused() -> bool:  # the policy takes a moment to be enforced; until then it may be let through
            result = cluster.kubectl("create", "-n", namespace, "-f", "-", check=False, input=json.dumps({
                "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "probe"},
                "spec": {"secretName": "probe", "commonName": "probe", "issuerRef": {"name": "ca"}}}))
            if result.returncode == 0:
                cluster.kubectl("delete", "certificate", "probe", "-n", namespace)
            return result.returncode != 0

        wait_for(refused, timeout=TIMEOUT, what="the policy to be enforced")
        cluster.apply(binding("guarded", **EXAMPLE_ARNS), namespace)
        status = wait_until_ready(cluster, namespace, "guarded", reason="CertificateRefused")
        message = condition(status, "Ready")["message"]
        assert "the API server refused Certificate rolesanywhere-guarded" in message
        assert "certificates need the security team's OK" in message
        wait_for(lambda: ("Warning", "CertificateRefused", message) in events_for(cluster, namespace, "guarded"),
                 timeout=TIMEOUT, what="the CertificateRefused Event")
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name,
                        "--ignore-not-found")
    # Level-triggered: once the policy is gone, a resync applies the Certificate.
    wait_until_ready(cluster, namespace, "guarded")
