"""Binding spec validation: what the operator accepts, and errors that name the field."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import kopf
import pytest
import yaml
from rolesanywhere_operator import constants as c
from rolesanywhere_operator import handlers
from rolesanywhere_operator import spec as spec_module
from rolesanywhere_operator.runtime import Runtime
from rolesanywhere_operator.settings import Settings
from rolesanywhere_operator.spec import (
    CABundle,
    InvalidBindingError,
    IssuedCertificate,
    IssuerRef,
    RoleSessionName,
    SecretCertificate,
    SidecarOptions,
    parse_binding,
)
from rolesanywhere_operator.workloads import ReportedOnce

REPO = Path(__file__).resolve().parents[2]
TRUST_ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555"
PROFILE = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000"
ROLE = "arn:aws:iam::111122223333:role/team/s3-reader"


def binding(**spec) -> dict:
    body = {
        "apiVersion": "rolesanywhere.dev/v1alpha1",
        "kind": "RolesAnywhereBinding",
        "metadata": {"name": "s3-reader", "namespace": "shop", "uid": "uid-1"},
        "spec": {
            "trustAnchorArn": TRUST_ANCHOR,
            "profileArn": PROFILE,
            "roleArn": ROLE,
            "certificate": {"issuerRef": {"name": "shop-ca"}},
        },
    }
    body["spec"].update(spec)
    return body


def test_defaults():
    parsed = parse_binding(binding())
    assert parsed.trust_anchor_region == parsed.app_region == "eu-west-1"
    assert parsed.session_duration == 3600
    assert parsed.delivery == "Endpoint"
    assert parsed.role_session_name is None  # no name is sent: every profile accepts that
    assert parsed.verify_credentials is True
    assert parsed.certificate == IssuedCertificate(
        issuer=IssuerRef(name="shop-ca", kind="Issuer", group="cert-manager.io"),
        common_name="s3-reader.shop",
        organizational_units=(),
        duration="24h",
        renew_before=None,
        private_key_algorithm="ECDSA",
    )
    assert parsed.secret_name == "rolesanywhere-s3-reader-tls"
    assert parsed.sidecar == SidecarOptions()


@pytest.mark.parametrize(
    "given, read", [("Endpoint", "Endpoint"), ("EndpointOnly", "EndpointOnly"), ("FileOnly", "FileOnly"), ("File", "FileOnly")]
)
def test_every_delivery_is_accepted_and_the_former_name_file_reads_as_file_only(given, read):
    assert parse_binding(binding(delivery=given)).delivery == read


def test_everything_set():
    parsed = parse_binding(
        binding(
            region="us-east-1",
            sessionDuration=43200,
            roleSessionName={"source": "Fixed", "name": "batch"},
            delivery="File",
            verifyCredentials=False,
            certificate={"secretRef": {"name": "exported", "intermediatesKey": "chain.pem", "passphraseKey": "pw"}},
            sidecar={
                "endpoint": "https://ra.internal:8443",
                "caBundle": {"configMapName": "corp-ca"},
                "proxy": {"httpsProxy": "http://proxy:3128", "noProxy": ".corp"},
                "resources": {"limits": {"memory": "64Mi"}},
            },
        )
    )
    assert (parsed.app_region, parsed.trust_anchor_region) == ("us-east-1", "eu-west-1")
    assert parsed.role_session_name == RoleSessionName("Fixed", "batch")
    assert parsed.verify_credentials is False
    assert parsed.certificate == SecretCertificate("exported", "chain.pem", "pw")
    assert parsed.secret_name == "exported"
    assert parsed.sidecar == SidecarOptions(
        endpoint="https://ra.internal:8443",
        ca_bundle=CABundle("corp-ca", "ca.crt"),
        https_proxy="http://proxy:3128",
        no_proxy=".corp",
        resources={"limits": {"memory": "64Mi"}},
    )


@pytest.mark.parametrize(
    "partition_arns",
    [
        ("aws-cn", "cn-north-1"),
        ("aws-us-gov", "us-gov-west-1"),
    ],
)
def test_other_partitions(partition_arns):
    partition, region = partition_arns
    parsed = parse_binding(
        binding(
            trustAnchorArn=TRUST_ANCHOR.replace("arn:aws:", f"arn:{partition}:").replace("eu-west-1", region),
            profileArn=PROFILE.replace("arn:aws:", f"arn:{partition}:").replace("eu-west-1", region),
            roleArn=ROLE.replace("arn:aws:", f"arn:{partition}:"),
        )
    )
    assert parsed.trust_anchor_region == region


def edit(path: str, value):
    """A binding with spec field `path` (dotted) set to `value`, or removed when value is REMOVE."""
    body = binding()
    target = body["spec"]
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    if value is REMOVE:
        target.pop(last, None)
    else:
        target[last] = copy.deepcopy(value)
    return body


REMOVE = object()


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("trustAnchorArn", "arn:aws:rolesanywhere:eu-west-1:1111:trust-anchor/x", "spec.trustAnchorArn: expected a trust anchor ARN"),
        ("trustAnchorArn", REMOVE, "spec.trustAnchorArn: expected a trust anchor ARN, got None"),
        ("profileArn", TRUST_ANCHOR, "spec.profileArn: expected a Roles Anywhere profile ARN"),
        ("roleArn", "arn:aws:iam::111122223333:user/bob", "spec.roleArn: expected an IAM role ARN"),
        ("profileArn", PROFILE.replace("eu-west-1", "eu-west-2"), "spec.profileArn: must be in the same region as spec.trustAnchorArn"),
        ("roleArn", ROLE.replace("arn:aws:", "arn:aws-cn:"), "spec.roleArn: must be in the same partition as spec.trustAnchorArn"),
        ("region", "Europe", "spec.region: expected an AWS region"),
        ("sessionDuration", 899, "spec.sessionDuration: expected seconds from 900 to 43200, got 899"),
        ("sessionDuration", 43201, "spec.sessionDuration: expected seconds from 900 to 43200, got 43201"),
        ("sessionDuration", "3600", "spec.sessionDuration: expected seconds from 900 to 43200, got '3600'"),
        ("delivery", "Env", "spec.delivery: expected one of Endpoint, EndpointOnly, FileOnly or File (the former name of FileOnly), got 'Env'"),
        ("delivery", ["File"], "spec.delivery: expected one of Endpoint, EndpointOnly, FileOnly or File (the former name of FileOnly), got ['File']"),
        ("certificate", REMOVE, "spec.certificate: missing; set issuerRef or secretRef"),
        ("certificate.secretRef", {"name": "x"}, "spec.certificate: exactly one of issuerRef and secretRef must be set"),
        ("certificate", {}, "spec.certificate: exactly one of issuerRef and secretRef must be set"),
        ("certificate", {"secretRef": {"name": "x"}, "commonName": "a"}, "spec.certificate: commonName apply only with issuerRef"),
        ("certificate.issuerRef", {"kind": "Issuer"}, "spec.certificate.issuerRef.name: expected the name of"),
        ("certificate.privateKey", {"algorithm": "DSA"}, "spec.certificate.privateKey.algorithm: expected one of ECDSA, RSA"),
        ("sidecar", {"endpoint": "ftp://x"}, "spec.sidecar.endpoint: expected an http:// or https:// URL"),
        ("sidecar", {"caBundle": {}}, "spec.sidecar.caBundle.configMapName: expected the name of a ConfigMap"),
        # The first release's string form: refused with what to write instead.
        ("roleSessionName", "batch", "spec.roleSessionName: expected {source: PodName} or {source: Fixed, name: NAME}"),
        ("roleSessionName", {"source": "Fixed"}, "spec.roleSessionName.name: expected 2 to 64 of the characters"),
        ("roleSessionName", {"source": "Fixed", "name": "has space"}, "spec.roleSessionName.name: expected 2 to 64"),
        ("roleSessionName", {"source": "PodName", "name": "x1"}, "spec.roleSessionName: expected {source: PodName}"),
        ("roleSessionName", {"source": "Pod"}, "spec.roleSessionName: expected {source: PodName}"),
        ("verifyCredentials", "yes", "spec.verifyCredentials: expected true or false, got 'yes'"),
        ("missedPods", "Delete", "spec.missedPods: expected Recreate or Report, got 'Delete'"),
        # What cert-manager would refuse.
        ("certificate.commonName", "c" * 65, "spec.certificate.commonName: 65 characters, more than the 64"),
        ("certificate.duration", "59m", "spec.certificate.duration: must be at least 1h (cert-manager's minimum), got 59m"),
        ("certificate.duration", "1d", "spec.certificate.duration: expected a Go duration such as 24h or 90m, got '1d'"),
        # Per-pod identity: issued, renewed by each sidecar, a lifetime of at least a couple of minutes.
        ("certificate.identity", "Node", "spec.certificate.identity: expected one of Shared, Pod, got 'Node'"),
        ("certificate", {"secretRef": {"name": "x"}, "identity": "Pod"},
         "spec.certificate.identity: Pod needs issuerRef (each pod's certificate is issued by it), not secretRef"),
        ("certificate", {"issuerRef": {"name": "ca"}, "identity": "Pod", "renewBefore": "10m"},
         "spec.certificate.renewBefore: does not apply with identity Pod"),
        ("certificate", {"issuerRef": {"name": "ca"}, "identity": "Pod", "duration": "119s"},
         "spec.certificate.duration: must be at least 2m (the minimum with identity Pod), got 119s"),
        ("certificate.renewBefore", "4m59s", "spec.certificate.renewBefore: must be at least 5m (cert-manager's minimum)"),
        ("certificate.renewBefore", "24h", "spec.certificate.renewBefore: must be shorter than spec.certificate.duration (24h)"),
        ("certificate", {"issuerRef": {"name": "ca"}, "duration": "2h", "renewBefore": "120m"},
         "spec.certificate.renewBefore: must be shorter than spec.certificate.duration (2h), got 120m"),
        # Names and keys never reach outside the binding's namespace or the sidecar's volumes.
        ("certificate", {"secretRef": {"name": "../../kube-system/secrets/x"}},
         "spec.certificate.secretRef.name: expected a Kubernetes name"),
        ("certificate", {"secretRef": {"name": "x", "intermediatesKey": "../../x"}},
         "spec.certificate.secretRef.intermediatesKey: expected a key"),
        ("certificate", {"secretRef": {"name": "x", "passphraseKey": ".."}},
         "spec.certificate.secretRef.passphraseKey: expected a key"),
        ("certificate", {"issuerRef": "ca"}, "spec.certificate.issuerRef: expected an object with name, kind and group"),
        ("certificate", {"secretRef": "tls"}, "spec.certificate.secretRef: expected an object with name, got 'tls'"),
        ("certificate.issuerRef", {"name": "../../victim/issuers/ca"}, "spec.certificate.issuerRef.name: expected a Kubernetes name"),
        ("certificate.issuerRef", {"name": "a" * 254}, "spec.certificate.issuerRef.name: expected a Kubernetes name of at most 253"),
        ("sidecar", {"caBundle": {"configMapName": "Corp_CA"}}, "spec.sidecar.caBundle.configMapName: expected a Kubernetes name"),
        ("sidecar", {"caBundle": {"configMapName": "ca", "key": "a/b"}}, "spec.sidecar.caBundle.key: expected a key"),
        # Transport: no clear-text CreateSession unless asked for, no proxy credentials in every pod's spec.
        ("sidecar", {"endpoint": "http://ra.internal:8080"},
         "spec.sidecar.endpoint: 'http://ra.internal:8080' is plain http, which would carry the session's secret key"),
        ("sidecar", {"endpoint": "http://ra.internal:8080", "allowInsecureEndpoint": False},
         "or set spec.sidecar.allowInsecureEndpoint: true for a test endpoint"),
        ("sidecar", {"endpoint": "http://x", "allowInsecureEndpoint": "yes"},
         "spec.sidecar.allowInsecureEndpoint: expected true or false, got 'yes'"),
        ("sidecar", {"proxy": {"httpsProxy": "http://svc:pw@proxy:3128"}},
         "spec.sidecar.proxy.httpsProxy: holds credentials (user:password@)"),
        ("sidecar", {"proxy": {"httpsProxy": "svc@proxy:3128"}}, "spec.sidecar.proxy.httpsProxy: holds credentials"),
        # Resources the API server would refuse in every injected pod.
        ("sidecar.resources", {"requests": {"cpu": "lots"}},
         "spec.sidecar.resources.requests.cpu: expected a quantity such as 10m, 64Mi or 1, got 'lots'"),
        ("sidecar.resources", {"limits": {"memory": -1}}, "spec.sidecar.resources.limits.memory: expected a quantity"),
        ("sidecar.resources", {"limits": {"memory": "64MB"}}, "spec.sidecar.resources.limits.memory: expected a quantity"),
        ("sidecar.resources", {"requests": {"bogus": 1}},
         "spec.sidecar.resources.requests.bogus: expected one of cpu, memory, ephemeral-storage"),
        ("sidecar.resources", {"requests": "10m"}, "spec.sidecar.resources.requests: expected a map of cpu"),
        ("sidecar.resources", {"claims": []}, "spec.sidecar.resources: expected requests and/or limits"),
        ("sidecar.resources", {"requests": {"memory": "0.1Gi"}, "limits": {"memory": "64Mi"}},
         "spec.sidecar.resources.requests.memory: '0.1Gi' is more than limits.memory ('64Mi')"),
    ],
)
def test_invalid_specs_name_the_field(path, value, message):
    with pytest.raises(InvalidBindingError) as raised:
        parse_binding(edit(path, value))
    assert str(raised.value).startswith("binding shop/s3-reader: ")
    assert message in str(raised.value)


class _Refusing:
    """A reconciler whose every call meets an invalid spec."""

    async def reconcile(self, body):
        raise InvalidBindingError("binding shop/s3-reader: spec is missing")

    async def refresh(self, namespace, name, *, gather=0.0):
        raise InvalidBindingError("binding shop/s3-reader: spec is missing")


@pytest.mark.parametrize("call", [
    lambda memo: handlers.reconcile_binding(body=binding(), memo=memo),
    lambda memo: handlers.certificate_changed(namespace="shop", labels={c.BINDING_LABEL: "s3-reader"}, memo=memo),
], ids=["binding", "certificate"])
def test_an_invalid_spec_that_reaches_a_kopf_handler_is_permanent(call):
    """Retrying cannot help until someone edits the binding, so kopf is told not to."""
    with pytest.raises(kopf.PermanentError, match="spec is missing"):
        asyncio.run(call(kopf.Memo(runtime=Runtime(settings=Settings(), kube=None, reconciler=_Refusing(), bindings=None,
                                                   excluded_namespaces=(), reported_workloads=ReportedOnce()))))


@pytest.mark.parametrize("name", ["a", "s3-reader", "ca.example.com", "0", "a" * 253])
def test_kubernetes_names_are_accepted(name):
    assert spec_module.name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "..", ".", "../x", "a/b", "A", "a_b", "-a", "a-", "a..b", ".a", "a.", "a b", "a" * 254, None, 3]
)
def test_anything_but_a_kubernetes_name_is_refused(name):
    assert spec_module.name_problem(name) is not None


@pytest.mark.parametrize("key", ["ca.crt", "tls.crt", ".hidden", "A_b-c.1", "a..b", "x" * 253])
def test_configmap_and_secret_keys_are_accepted(key):
    assert spec_module.key_problem(key) is None


@pytest.mark.parametrize("key", ["", ".", "..", "..x", "../x", "a/b", "a b", "x" * 254, None])
def test_anything_but_a_configmap_or_secret_key_is_refused(key):
    assert spec_module.key_problem(key) is not None


@pytest.mark.parametrize("sidecar", [
    {"endpoint": "http://ra.internal:8080", "allowInsecureEndpoint": True},
    {"endpoint": "https://ra.internal:8443", "allowInsecureEndpoint": False},
    {"proxy": {"httpsProxy": "http://proxy:3128/path@x"}},
    {"resources": {"requests": {"cpu": "10m", "memory": 33554432, "ephemeral-storage": "1e9"},
                   "limits": {"cpu": "1", "memory": "32Mi", "ephemeral-storage": "1G"}}},
    {"resources": {"requests": {"cpu": ".5"}}},
], ids=["http opted in", "https", "@ in the path", "every resource", "request alone"])
def test_sidecar_options_the_api_server_takes_are_accepted(sidecar):
    assert parse_binding(binding(sidecar=sidecar)).sidecar.resources == sidecar.get("resources")


@pytest.mark.parametrize(("text", "amount"), [
    ("10m", "0.01"), ("64Mi", 64 * 2**20), ("1.5G", "1.5e9"), ("2", 2), (3, 3), (".5", "0.5"), ("1e3", 1000),
    ("1E", "1e18"), ("2Ei", 2 * 2**60), ("100u", "0.0001"), ("7n", "7e-9"), ("1k", 1000),
])
def test_quantities_read_as_the_api_server_reads_them(text, amount):
    assert spec_module.quantity(text) == spec_module.Decimal(amount)


def test_crd_sidecar_rules_equal_the_operators():
    crd = yaml.safe_load((REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    sidecar = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["sidecar"]
    props = sidecar["properties"]
    assert props["endpoint"]["pattern"] == spec_module.ENDPOINT_PATTERN
    assert props["allowInsecureEndpoint"] == {**props["allowInsecureEndpoint"], "type": "boolean", "default": False}
    assert "!self.endpoint.startsWith('http://')" in sidecar["x-kubernetes-validations"][0]["rule"]
    (proxy_rule,) = props["proxy"]["properties"]["httpsProxy"]["x-kubernetes-validations"]
    assert proxy_rule["rule"] == f"!self.matches('{spec_module.PROXY_CREDENTIALS_PATTERN}')"
    assert proxy_rule["message"] == spec_module.proxy_problem("http://u:p@proxy")
    names = "[" + ", ".join(f"'{n}'" for n in spec_module.SIDECAR_RESOURCE_NAMES) + "]"
    for group in ("requests", "limits"):
        schema = props["resources"]["properties"][group]
        assert schema["additionalProperties"]["pattern"] == spec_module.QUANTITY_PATTERN
        assert schema["additionalProperties"]["x-kubernetes-int-or-string"] is True
        assert schema["maxProperties"] == len(spec_module.SIDECAR_RESOURCE_NAMES)
        assert schema["x-kubernetes-validations"][0]["rule"] == f"self.all(k, k in {names})"


def test_crd_name_and_key_patterns_equal_the_operators():
    crd = yaml.safe_load((REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    certificate = props["certificate"]["properties"]
    names = [
        certificate["issuerRef"]["properties"]["name"],
        certificate["secretRef"]["properties"]["name"],
        props["sidecar"]["properties"]["caBundle"]["properties"]["configMapName"],
    ]
    keys = [
        certificate["secretRef"]["properties"]["intermediatesKey"],
        certificate["secretRef"]["properties"]["passphraseKey"],
        props["sidecar"]["properties"]["caBundle"]["properties"]["key"],
    ]
    for field in names:
        assert (field["pattern"], field["maxLength"]) == (spec_module.NAME_PATTERN, spec_module.NAME_MAX_LENGTH)
    for field in keys:
        assert (field["pattern"], field["maxLength"]) == (spec_module.KEY_PATTERN, spec_module.KEY_MAX_LENGTH)
    rule = version["schema"]["openAPIV3Schema"]["x-kubernetes-validations"][0]["rule"]
    assert rule == f"size(self.metadata.name) <= {spec_module.BINDING_NAME_MAX_LENGTH}"


def test_the_default_common_name_must_fit_cert_managers_64_characters():
    body = binding()
    body["metadata"].update(name="a" * 40, namespace="b" * 30)
    with pytest.raises(InvalidBindingError) as raised:
        parse_binding(body)
    assert f"spec.certificate.commonName: the default <binding>.<namespace>, {'a' * 40}.{'b' * 30}, is 71 characters" in str(
        raised.value
    )
    body["spec"]["certificate"]["commonName"] = "reports"
    assert parse_binding(body).certificate.common_name == "reports"
    body = binding()
    body["metadata"].update(name="a" * 33, namespace="b" * 30)
    assert len(parse_binding(body).certificate.common_name) == 64


def test_a_per_pod_binding_is_issued_and_may_be_short_lived():
    body = binding(certificate={"issuerRef": {"name": "ca"}, "identity": "Pod", "duration": "3m"})
    certificate = parse_binding(body).certificate
    assert isinstance(certificate, spec_module.IssuedCertificate)
    assert certificate.per_pod and certificate.duration == "3m"
    shared = parse_binding(binding()).certificate
    assert isinstance(shared, spec_module.IssuedCertificate) and not shared.per_pod


@pytest.mark.parametrize(
    "duration, renew_before", [("1h", "5m"), ("2160h", "360h"), ("1.5h", "89m59s"), ("24h", None), ("60m", "59m")]
)
def test_durations_cert_manager_accepts(duration, renew_before):
    certificate = {"issuerRef": {"name": "ca"}, "duration": duration}
    if renew_before:
        certificate["renewBefore"] = renew_before
    parsed = parse_binding(binding(certificate=certificate)).certificate
    assert (parsed.duration, parsed.renew_before) == (duration, renew_before)


def test_go_durations():
    assert spec_module.duration_seconds("2h45m") == 9900
    assert spec_module.duration_seconds("1.5h") == 5400
    assert spec_module.duration_seconds("300ms") == 0.3
    with pytest.raises(ValueError):
        spec_module.duration_seconds("1h ")


def test_crd_and_policy_hold_cert_managers_limits_as_the_constants_declare():
    from rolesanywhere_operator import constants as c

    crd = yaml.safe_load((REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    certificate = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["certificate"]
    rules = {(r.get("fieldPath"), r["rule"]) for r in certificate["x-kubernetes-validations"]}
    shared_minimum = (f"!has(self.duration) || duration(self.duration) >= duration('{c.MIN_CERTIFICATE_DURATION}') "
                      f"|| (has(self.identity) && self.identity == '{c.IDENTITY_POD}')")
    assert (".duration", shared_minimum) in rules
    pod_minimum = f"!has(self.duration) || duration(self.duration) >= duration('{c.MIN_POD_CERTIFICATE_DURATION}')"
    assert (".duration", pod_minimum) in rules
    assert certificate["properties"]["identity"]["enum"] == list(c.IDENTITIES)
    assert certificate["properties"]["identity"]["default"] == c.IDENTITY_SHARED
    assert (".renewBefore", f"!has(self.renewBefore) || duration(self.renewBefore) >= duration('{c.MIN_RENEW_BEFORE}')") in rules
    shorter = ("!has(self.renewBefore) || duration(self.renewBefore) < "
               f"duration(has(self.duration) ? self.duration : '{c.DEFAULT_CERTIFICATE_DURATION}')")
    assert (".renewBefore", shorter) in rules
    assert certificate["properties"]["commonName"]["maxLength"] == c.MAX_COMMON_NAME_LENGTH
    for field in ("duration", "renewBefore"):
        assert certificate["properties"][field]["pattern"] == spec_module.DURATION_PATTERN
    policy, _ = yaml.safe_load_all((REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.policy.yaml").read_text())
    (validation,) = policy["spec"]["validations"]
    assert validation["expression"].endswith(f"<= {c.MAX_COMMON_NAME_LENGTH}")
    assert f"the {c.MAX_COMMON_NAME_LENGTH} characters" in validation["messageExpression"]


def test_the_charts_kube_version_is_the_floor_the_operator_starts_on():
    # One floor: the operator refuses older API servers (injection.unsupported_server), and the CRD's CEL
    # (reason, fieldPath, the quantity library) needs no newer one.
    chart = yaml.safe_load((REPO / "charts" / "rolesanywhere-operator" / "Chart.yaml").read_text())
    major, minor = c.NATIVE_SIDECAR_MIN_VERSION
    # "-0" admits the pre-release suffixes of managed clusters' versions (v1.29.3-eks-...), as helm documents.
    assert chart["kubeVersion"] == f">={major}.{minor}.0-0"
