"""Per-pod identity (spec.certificate.identity: Pod) against the real API server and cert-manager: pods
injected by the webhook, tokens bound to them by the API server's TokenRequest, the real sidecar process
asking the operator's identity endpoint for its certificate and using it with the Roles Anywhere emulator.

The pods here are API objects only (no kubelet schedules them): the sidecar runs as a process on this
machine with the env the webhook gave the pod's sidecar container, its token file and CA bundle made
by the test as the kubelet would project them. tests/node/test_pod_identity_on_node.py runs them in
containers.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from localcluster.controlplane import CERT_MANAGER_NAMESPACE
from rolesanywhere_devkit.aws import S3_READ_ONLY_POLICY, arn, emulator_config
from rolesanywhere_devkit.operator import (
    OperatorProcess,
    binding,
    binding_status,
    ca_issuer,
    condition,
    sidecar_endpoint,
)
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_devkit.sidecar import SidecarProcess, isolated_aws_environment
from rolesanywhere_operator import constants as c
from rolesanywhere_protocol.csr import sign_certification_request_info
from rolesanywhere_protocol.pod_identity import (
    RESIGN_STATUS,
    TOKEN_AUDIENCE,
    parse_issued,
    parse_resign,
    request_body,
)
from rolesanywhere_sidecar.contract import CREDENTIALS_JSON_FILE

TIMEOUT = 60
CLUSTER_ISSUER = f"pod-identity-{uuid.uuid4().hex[:6]}"
#: A sidecar's log line for each certificate the operator issued it.
ISSUED = re.compile(r'"message": "certificate issued".*?"serial": "([0-9a-f]+)"')


@pytest.fixture(scope="module")
def cluster_issuer(cluster, rolesanywhere_ca):
    """A ClusterIssuer signing with the trust anchor's CA: its key is in cert-manager's namespace, so the
    test's namespaces hold no private key at all."""
    ca_issuer(cluster, CERT_MANAGER_NAMESPACE, rolesanywhere_ca.root, name=CLUSTER_ISSUER)
    issuer = cluster.get("issuer", CLUSTER_ISSUER, CERT_MANAGER_NAMESPACE)
    cluster.apply({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": CLUSTER_ISSUER},
                   "spec": issuer["spec"]})
    cluster.kubectl("delete", "issuer", CLUSTER_ISSUER, "-n", CERT_MANAGER_NAMESPACE)
    yield CLUSTER_ISSUER
    cluster.kubectl("delete", "clusterissuer", CLUSTER_ISSUER, "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def operator(cluster, cluster_issuer, tmp_path_factory):
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator"),
                              extra_args=(f"--allowed-cluster-issuers={cluster_issuer}",)).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def roles_anywhere(moto_server, rolesanywhere_ca, emulator_factory):
    """A profile as AWS creates it by default (no role session names) listing an S3 read-only role."""
    role_arn = moto_server.create_role(f"s3-read-only-{uuid.uuid4().hex[:8]}", S3_READ_ONLY_POLICY)
    anchor, profile = arn("trust-anchor"), arn("profile")
    emulator = emulator_factory(emulator_config(
        moto_server, trust_anchors=[{"arn": anchor, "caBundle": str(rolesanywhere_ca.bundle_path)}],
        profiles=[{"arn": profile, "roleArns": [role_arn]}]))
    return {"emulator": emulator, "trust_anchor_arn": anchor, "profile_arn": profile, "role_arn": role_arn}


def per_pod_binding(cluster, namespace: str, ra: dict, issuer: str, name: str = "s3-reader", **certificate) -> None:
    body = binding(name, trust_anchor_arn=ra["trust_anchor_arn"], profile_arn=ra["profile_arn"],
                   role_arn=ra["role_arn"], sessionDuration=900, sidecar=sidecar_endpoint(ra["emulator"].url))
    body["spec"]["certificate"] = {"issuerRef": {"name": issuer, "kind": "ClusterIssuer"}, "identity": "Pod",
                                   "organizationalUnits": ["reports"], **certificate}
    cluster.apply(body, namespace)


def create_pod(cluster, namespace: str, name: str, binding_name: str | None) -> dict:
    """A pod opted in to `binding_name` (None: not opted in), as the webhook admitted it."""
    metadata: dict = {"name": name}
    if binding_name:
        metadata.update(labels={c.INJECT_LABEL: c.INJECT_LABEL_VALUE}, annotations={c.BINDING_ANNOTATION: binding_name})
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                   "spec": {"containers": [{"name": "app", "image": "app:1"}]}}, namespace)
    return cluster.get("pod", name, namespace)


def pod_token(cluster, namespace: str, pod: dict, audience: str = TOKEN_AUDIENCE) -> str:
    """What the kubelet projects into the identity volume: a token bound to the pod, for `audience`."""
    metadata = pod["metadata"]
    return cluster.kubectl(
        "create", "token", pod["spec"].get("serviceAccountName", "default"), "-n", namespace, f"--audience={audience}",
        "--bound-object-kind=Pod", f"--bound-object-name={metadata['name']}",
        f"--bound-object-uid={metadata['uid']}", "--duration=10m",
    ).stdout.strip()


def sidecar_env(pod: dict, workdir: Path, operator: OperatorProcess, token: str) -> dict[str, str]:
    """The env the webhook gave the pod's sidecar, its files moved to `workdir` and its ports to free ones."""
    sidecar = next(x for x in pod["spec"]["initContainers"] if x["name"] == c.SIDECAR_CONTAINER)
    env = {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
    token_file = workdir / "identity" / "token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token)
    ca_file = token_file.with_name("ca.crt")
    ca_file.write_text(pod["metadata"]["annotations"][c.POD_IDENTITY_CA_ANNOTATION])
    env.update(ROLESANYWHERE_IDENTITY_TOKEN_FILE=str(token_file), ROLESANYWHERE_IDENTITY_CA_BUNDLE=str(ca_file),
               ROLESANYWHERE_OUTPUT_DIR=str(workdir / "out"), ROLESANYWHERE_PORT="0", ROLESANYWHERE_HEALTH_PORT="0")
    assert env["ROLESANYWHERE_IDENTITY_URL"] == operator.identity_url
    return isolated_aws_environment(workdir, **env)


def start_sidecar(pod: dict, workdir: Path, operator: OperatorProcess, token: str, *args: str) -> SidecarProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    return SidecarProcess(list(args), log_path=workdir / "sidecar.log",
                          env=sidecar_env(pod, workdir, operator, token)).start()


def credentials_of(workdir: Path) -> dict:
    path = workdir / "out" / CREDENTIALS_JSON_FILE
    return wait_for(lambda: json.loads(path.read_text()) if path.exists() else None, timeout=TIMEOUT,
                    what=f"credentials in {path}")


def issued_serials(sidecar: SidecarProcess) -> list[str]:
    return ISSUED.findall(sidecar.output())


def post(operator: OperatorProcess, token: str | None, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    with httpx.Client(verify=ssl.create_default_context(cafile=str(operator.ca_path)), timeout=30) as client:
        return client.post(operator.identity_url, content=body, headers=headers)


def a_csr(subject: str = "CN=admin,O=kube-system") -> tuple[x509.CertificateSigningRequest, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kube-system")]) if subject else x509.Name([])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()), key


def events(cluster, namespace: str, pod_name: str) -> list[str]:
    found = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e["message"] for e in found
            if e["involvedObject"].get("name") == pod_name and e["reason"] == "PodIdentityRefused"]


def test_each_pod_gets_a_certificate_of_its_own_and_no_key_is_stored_anywhere(
    cluster, namespace, operator, cluster_issuer, roles_anywhere, moto_server, tmp_path
):
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    per_pod_binding(cluster, namespace, roles_anywhere, cluster_issuer)
    first, second = (create_pod(cluster, namespace, f"reports-{i}", "s3-reader") for i in (1, 2))
    for pod in (first, second):
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert c.CERTIFICATE_VOLUME not in volumes and "secret" not in json.dumps(volumes)
        assert volumes[c.IDENTITY_VOLUME]["projected"]["sources"][0]["serviceAccountToken"]["audience"] == TOKEN_AUDIENCE
        app = pod["spec"]["containers"][0]
        assert c.IDENTITY_VOLUME not in {m["name"] for m in app.get("volumeMounts") or []}  # the sidecar's only

    sidecars = [start_sidecar(pod, tmp_path / pod["metadata"]["name"], operator, pod_token(cluster, namespace, pod))
                for pod in (first, second)]
    credentials = [credentials_of(tmp_path / pod["metadata"]["name"]) for pod in (first, second)]
    serials = [wait_for(lambda s=s: issued_serials(s), timeout=TIMEOUT, what="an issued certificate")[0]
               for s in sidecars]
    assert serials[0] != serials[1]
    seen = {record["serialNumberHex"] for record in roles_anywhere["emulator"].sessions() if record["status"] == 201}
    assert {int(s, 16) for s in serials} <= {int(s, 16) for s in seen}
    for got, serial in zip(credentials, serials, strict=True):
        session = boto3.Session(aws_access_key_id=got["AccessKeyId"], aws_secret_access_key=got["SecretAccessKey"],
                                aws_session_token=got["SessionToken"], region_name="us-east-1")
        s3 = session.client("s3", endpoint_url=moto_server.endpoint)
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        # No session name is sent: the session is named after the pod's own certificate serial (CloudTrail's).
        arn = session.client("sts", endpoint_url=moto_server.endpoint).get_caller_identity()["Arn"]
        assert int(arn.rsplit("/", 1)[1], 16) == int(serial, 16), arn

    # Nothing in the namespace holds a key: no Secret at all, and the requests hold a CSR and a certificate.
    assert json.loads(cluster.kubectl("get", "secrets", "-n", namespace, "-o", "json").stdout)["items"] == []
    requests = json.loads(cluster.kubectl("get", "certificaterequests", "-n", namespace, "-o", "json").stdout)["items"]
    assert len(requests) == 2
    for request in requests:
        assert "PRIVATE KEY" not in json.dumps(request)
        assert b"CERTIFICATE REQUEST" in base64.b64decode(request["spec"]["request"])
        assert request["metadata"]["ownerReferences"][0]["kind"] == "Pod"
        issued = x509.load_pem_x509_certificate(base64.b64decode(request["status"]["certificate"]))
        uri = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert uri.get_values_for_type(x509.UniformResourceIdentifier)[0].startswith(
            f"spiffe://cluster.local/ns/{namespace}/sa/default/pod/reports-")
        assert issued.subject.rfc4514_string() == f"CN=s3-reader.{namespace},OU=reports,O={namespace}"

    def counted():
        status = binding_status(cluster, namespace, "s3-reader")
        return status if (status.get("pods") or {}).get("certified") == 2 else None

    status = wait_for(counted, timeout=TIMEOUT, what="status.pods.certified 2")
    assert condition(status, "CertificateReady")["reason"] == "PodCertificates"
    assert condition(status, "Ready")["status"] == "True"
    listed = cluster.kubectl("get", "rab", "s3-reader", "-n", namespace).stdout
    assert "0/2, 2 certified" in listed, listed  # no kubelet runs these pods: none is Ready
    for sidecar in sidecars:
        sidecar.terminate()
        assert "PRIVATE KEY" not in sidecar.output()
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"PRIVATE KEY" not in path.read_bytes(), path

    # A deleted pod takes its request with it (the garbage collector follows the owner reference).
    cluster.kubectl("delete", "pod", "reports-1", "-n", namespace, "--wait=true")
    wait_for(lambda: len(json.loads(cluster.kubectl("get", "certificaterequests", "-n", namespace, "-o", "json")
                                    .stdout)["items"]) == 1, timeout=TIMEOUT, what="the deleted pod's request gone")


def test_a_csr_asking_for_another_subject_gets_the_operators_subject(
    cluster, namespace, operator, cluster_issuer, roles_anywhere
):
    per_pod_binding(cluster, namespace, roles_anywhere, cluster_issuer)
    pod = create_pod(cluster, namespace, "greedy", "s3-reader")
    token = pod_token(cluster, namespace, pod)
    csr, key = a_csr()
    answer = post(operator, token, request_body(csr))
    assert answer.status_code == RESIGN_STATUS, answer.text
    signed = sign_certification_request_info(parse_resign(answer.content), key)
    issued = post(operator, token, request_body(signed))
    assert issued.status_code == 200, issued.text
    certificate = parse_issued(issued.content).certificate
    assert certificate.subject.rfc4514_string() == f"CN=s3-reader.{namespace},OU=reports,O={namespace}"
    assert certificate.public_key() == key.public_key()


def test_tokens_that_are_not_the_injected_pods_own_are_refused_with_the_reason_in_the_log_and_an_event(
    cluster, namespace, operator, cluster_issuer, roles_anywhere, tmp_path
):
    per_pod_binding(cluster, namespace, roles_anywhere, cluster_issuer)
    pod = create_pod(cluster, namespace, "reports", "s3-reader")
    csr_body = request_body(a_csr()[0])

    # Another audience (the API server's own): the sidecar's log and the pod's Events say why.
    wrong_audience = pod_token(cluster, namespace, pod, audience="https://kubernetes.default.svc")
    sidecar = start_sidecar(pod, tmp_path / "wrong-audience", operator, wrong_audience)
    wait_for(lambda: f"not a valid service-account token for audience {TOKEN_AUDIENCE}" in sidecar.output(),
             timeout=TIMEOUT, what="the refusal in the sidecar's log")
    sidecar.terminate()
    wait_for(lambda: events(cluster, namespace, "reports"), timeout=TIMEOUT, what="a PodIdentityRefused Event")
    assert not (tmp_path / "wrong-audience" / "out" / CREDENTIALS_JSON_FILE).exists()

    # No token, or not a token at all.
    assert post(operator, None, csr_body).status_code == 401
    assert post(operator, "not-a-token", csr_body).status_code == 401

    # A pod of another namespace, and a pod not injected for a per-pod binding.
    other = f"{namespace[:50]}-other"
    cluster.kubectl("create", "namespace", other)
    try:
        outsider = create_pod(cluster, other, "outsider", None)
        answer = post(operator, pod_token(cluster, other, outsider), csr_body)
        assert answer.status_code == 403 and "was not injected by the operator" in answer.json()["message"]
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false")
    plain = create_pod(cluster, namespace, "plain", None)
    answer = post(operator, pod_token(cluster, namespace, plain), csr_body)
    assert answer.status_code == 403 and "was not injected by the operator" in answer.json()["message"]
    wait_for(lambda: events(cluster, namespace, "plain"), timeout=TIMEOUT, what="an Event on the plain pod")

    # A token replayed after its pod was deleted: the API server no longer vouches for it.
    token = pod_token(cluster, namespace, pod)
    cluster.kubectl("delete", "pod", "reports", "-n", namespace, "--wait=true")
    answer = post(operator, token, csr_body)
    # 401 when the API server no longer vouches for the token; 403 while its token review cache still does,
    # from the operator's own check that the pod exists.
    status, message = answer.status_code, answer.json()["message"]
    assert ((status == 401 and message.startswith("the token is not a valid service-account token"))
            or (status, message) == (403, f"pod {namespace}/reports does not exist (any more): its token outlived it")
            ), answer.text
