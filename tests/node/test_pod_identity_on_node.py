"""Per-pod identity in real pods: the chart-installed operator issues each injected pod's sidecar (the image
built from the Dockerfile) a certificate of its own for a key the sidecar made in memory; the app lists
buckets with the credentials; a short-lived certificate is renewed in place, through an operator outage.

The node has no cluster DNS, so the test's pods map the operator's Service name to its cluster IP
(hostAliases), as DNS would. The refusals (tokens of other audiences, other pods, deleted pods; CSRs
asking for other subjects) are tests/integration/test_pod_identity.py's, with the same sidecar code.
"""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest
from localcluster.controlplane import CERT_MANAGER_NAMESPACE
from rolesanywhere_devkit.nodepods import (
    app_deployment,
    exec_in,
    install_operator_chart,
    logs,
    statuses,
    wait_for_ready,
)
from rolesanywhere_devkit.operator import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    binding,
    binding_status,
    ca_issuer,
    condition,
    pods,
    sidecar_endpoint,
)
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator import constants as c

BINDING = "per-pod"
CLUSTER_ISSUER = f"node-pod-identity-{uuid.uuid4().hex[:6]}"
#: The chart's Service in front of the webhook and the identity endpoint.
SERVICE = f"{OPERATOR_ACCOUNT}-webhook"
CREATED = 201
#: A sidecar's log line for each certificate the operator issued it (text format: key="value" pairs).
ISSUED = re.compile(r'certificate issued .*?serial="([0-9a-f]+)"')
REFRESHED = re.compile(r'credentials refreshed certificate_serial="([0-9a-f]+)".* access_key_id="(\w+)"')
#: The app: an STS call through the SDK every second, its outcome on stdout (kubectl logs).
CALLER_LOOP = """
import time, boto3
sts = boto3.client("sts")
while True:
    try:
        print("ok", sts.get_caller_identity()["Arn"], flush=True)
    except Exception as error:
        print("error", type(error).__name__, error, flush=True)
    time.sleep(1)
"""
BOTO3_LIST = """
import boto3
print("buckets:", " ".join(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]))
"""


@pytest.fixture(scope="module")
def operator_chart(cluster, node_rolesanywhere, tmp_path_factory):
    """The chart with one ClusterIssuer allowed, whose CA key is in cert-manager's namespace: the test's
    namespaces hold no private key at all."""
    ca_issuer(cluster, CERT_MANAGER_NAMESPACE, node_rolesanywhere.authorities.root, name=CLUSTER_ISSUER)
    spec = cluster.get("issuer", CLUSTER_ISSUER, CERT_MANAGER_NAMESPACE)["spec"]
    cluster.apply({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": CLUSTER_ISSUER},
                   "spec": spec})
    cluster.kubectl("delete", "issuer", CLUSTER_ISSUER, "-n", CERT_MANAGER_NAMESPACE)
    install_operator_chart(cluster, tmp_path_factory.mktemp("helm-home"),
                           values={"clusterIssuers.allowed": f"{{{CLUSTER_ISSUER}}}"})
    yield
    cluster.kubectl("delete", "clusterissuer", CLUSTER_ISSUER, "--ignore-not-found", check=False)


def per_pod_app(cluster, namespace: str, ra, name: str, command: list[str], *, replicas: int = 1,
                duration: str = "24h") -> list[dict]:
    """A per-pod binding and a Deployment of the app for it; its pods once Ready."""
    body = binding(BINDING, trust_anchor_arn=ra.trust_anchor_arn, profile_arn=ra.profile_arn, role_arn=ra.role_arn,
                   sidecar=sidecar_endpoint(ra.emulator.url))
    body["spec"]["certificate"] = {"issuerRef": {"name": CLUSTER_ISSUER, "kind": "ClusterIssuer"},
                                   "identity": "Pod", "duration": duration}
    cluster.apply(body, namespace)
    deployment = app_deployment(cluster, name, binding=BINDING, command=command,
                                env={"AWS_ENDPOINT_URL": ra.moto.endpoint, "AWS_EC2_METADATA_DISABLED": "true"})
    service = cluster.get("service", SERVICE, OPERATOR_NAMESPACE)
    deployment["spec"]["replicas"] = replicas
    deployment["spec"]["template"]["spec"]["hostAliases"] = [
        {"ip": service["spec"]["clusterIP"], "hostnames": [f"{SERVICE}.{OPERATOR_NAMESPACE}.svc"]}]
    cluster.apply(deployment, namespace)

    def created():
        found = [p for p in pods(cluster, namespace, f"app={name}") if not p["metadata"].get("deletionTimestamp")]
        return found if len(found) == replicas else None

    return [wait_for_ready(cluster, namespace, p["metadata"]["name"])
            for p in wait_for(created, timeout=120, what=f"{replicas} pods of {name}")]


def issued(cluster, namespace: str, pod: dict) -> list[str]:
    return ISSUED.findall(logs(cluster, namespace, pod["metadata"]["name"], c.SIDECAR_CONTAINER))


def test_each_pod_presents_its_own_certificate_lists_buckets_and_no_key_is_stored(
    cluster, namespace, operator_chart, node_rolesanywhere
):
    ra = node_rolesanywhere
    bucket = f"per-pod-{uuid.uuid4().hex[:8]}"
    ra.moto.client("s3").create_bucket(Bucket=bucket)
    running = per_pod_app(cluster, namespace, ra, "per-pod-app", ["sleep", "infinity"], replicas=2)

    serials = [issued(cluster, namespace, pod)[0] for pod in running]
    assert len(set(serials)) == 2, serials
    accepted = {int(s["serialNumberHex"], 16) for s in ra.emulator.sessions() if s["status"] == CREATED}
    assert {int(s, 16) for s in serials} <= accepted
    for pod in running:
        out = exec_in(cluster, namespace, pod["metadata"]["name"], "app", "python3", "-c", BOTO3_LIST).stdout
        assert bucket in out, out
        assert c.CERTIFICATE_VOLUME not in {v["name"] for v in pod["spec"]["volumes"]}

    secrets = json.loads(cluster.kubectl("get", "secrets", "-n", namespace, "-o", "json").stdout)["items"]
    assert secrets == [], [s["metadata"]["name"] for s in secrets]
    requests = json.loads(cluster.kubectl("get", "certificaterequests", "-n", namespace, "-o", "json").stdout)["items"]
    assert len(requests) == 2
    for request in requests:
        assert set(request["spec"]) >= {"request", "issuerRef"} and "PRIVATE KEY" not in json.dumps(request)
        assert b"CERTIFICATE REQUEST" in base64.b64decode(request["spec"]["request"])
        assert b"BEGIN CERTIFICATE" in base64.b64decode(request["status"]["certificate"])

    def counted():
        status = binding_status(cluster, namespace, BINDING)
        return status if (status.get("pods") or {}).get("certified") == 2 else None

    status = wait_for(counted, timeout=60, what="status.pods.certified 2")
    assert condition(status, c.CONDITION_READY)["status"] == "True"
    for pod in running:
        log = logs(cluster, namespace, pod["metadata"]["name"], c.SIDECAR_CONTAINER)
        assert "PRIVATE KEY" not in log
        metrics = exec_in(cluster, namespace, pod["metadata"]["name"], "app", "python3", "-c",
                          "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:"
                          f"{c.SIDECAR_HEALTH_PORT}{c.METRICS_PATH}').read().decode())").stdout
        assert "rolesanywhere_sidecar_certificate_not_after" in metrics


def test_a_short_lived_certificate_is_renewed_in_place_through_an_operator_outage(
    cluster, namespace, operator_chart, node_rolesanywhere
):
    """A 3-minute certificate: the operator is down when the sidecar first tries to renew it (at about two
    minutes), so it keeps its certificate and credentials; once the operator is back the renewal goes
    through, the next CreateSession signs with the new serial, and the app's SDK never saw an error."""
    ra = node_rolesanywhere
    (pod,) = per_pod_app(cluster, namespace, ra, "renewing-app", ["python3", "-c", CALLER_LOOP], duration="3m")
    name = pod["metadata"]["name"]
    (first,) = issued(cluster, namespace, pod)
    deployment = cluster.get("deployment", OPERATOR_ACCOUNT, OPERATOR_NAMESPACE)
    replicas = deployment["spec"]["replicas"]
    cluster.kubectl("scale", "deployment", OPERATOR_ACCOUNT, "-n", OPERATOR_NAMESPACE, "--replicas=0")
    try:
        wait_for(lambda: "renewing the certificate failed" in logs(cluster, namespace, name, c.SIDECAR_CONTAINER),
                 timeout=200, interval=2, what="a renewal attempt while the operator is down")
        assert issued(cluster, namespace, pod) == [first]
    finally:
        cluster.kubectl("scale", "deployment", OPERATOR_ACCOUNT, "-n", OPERATOR_NAMESPACE, f"--replicas={replicas}")

    def renewed():
        found = issued(cluster, namespace, pod)
        return found[1] if len(found) > 1 else None

    second = wait_for(renewed, timeout=120, interval=2, what="the renewal once the operator is back")
    assert second != first

    def refreshed_with_it():
        log = logs(cluster, namespace, name, c.SIDECAR_CONTAINER)
        keys = [key for serial, key in REFRESHED.findall(log) if int(serial, 16) == int(second, 16)]
        return keys[0] if keys else None

    access_key_id = wait_for(refreshed_with_it, timeout=120, interval=2,
                             what=f"a CreateSession with the renewed certificate (serial {second})")
    (session,) = [s for s in ra.emulator.sessions() if s.get("accessKeyId") == access_key_id]
    assert session["status"] == CREATED and int(session["serialNumberHex"], 16) == int(second, 16)
    now = cluster.get("pod", name, namespace)
    assert now["metadata"]["uid"] == pod["metadata"]["uid"]
    assert {n: s["restartCount"] for n, s in statuses(now).items()} == {c.SIDECAR_CONTAINER: 0, "app": 0}
    app_log = logs(cluster, namespace, name, "app")
    assert app_log.count("ok ") > 60 and "error" not in app_log, app_log[-2000:]


#: What a container of the pod could send the identity endpoint with a token it holds: the status and message.
ASK_WITH_TOKEN = """
import json, ssl, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[2], data=json.dumps({"csr": "-"}).encode(),
                                 headers={"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json"})
try:
    urllib.request.urlopen(request, context=ssl._create_unverified_context(), timeout=30)
    print(200)
except urllib.error.HTTPError as error:
    print(error.code, json.loads(error.read())["message"])
"""
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_tokens_other_than_the_sidecars_own_are_refused_in_real_pods(
    cluster, namespace, operator_chart, node_rolesanywhere
):
    """The app container's own service-account token (the API server's audience) is refused; so is the
    sidecar's token once its pod is gone, replayed from the pod that replaced it. Both with the reason,
    and the first with an Event on the pod."""
    (pod,) = per_pod_app(cluster, namespace, node_rolesanywhere, "token-app", ["sleep", "infinity"])
    name = pod["metadata"]["name"]
    sidecar = next(x for x in pod["spec"]["initContainers"] if x["name"] == c.SIDECAR_CONTAINER)
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    url, token_file = env["ROLESANYWHERE_IDENTITY_URL"], env["ROLESANYWHERE_IDENTITY_TOKEN_FILE"]

    def ask(pod_name: str, token: str) -> str:
        return exec_in(cluster, namespace, pod_name, "app", "python3", "-c", ASK_WITH_TOKEN, token, url).stdout.strip()

    apps_own = exec_in(cluster, namespace, name, "app", "cat", SERVICE_ACCOUNT_TOKEN).stdout.strip()
    refused = ask(name, apps_own)
    assert refused.startswith("401 the token is not a valid service-account token for audience"), refused
    wait_for(lambda: "identity endpoint: the token is not a valid service-account token" in cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}").stdout,
        timeout=60, what="a PodIdentityRefused Event on the pod")

    sidecars_own = exec_in(cluster, namespace, name, c.SIDECAR_CONTAINER, "python3", "-c",
                           f"print(open({token_file!r}).read())").stdout.strip()
    cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=true")
    (replacement,) = wait_for(lambda: [p for p in pods(cluster, namespace, "app=token-app")
                                       if p["metadata"]["name"] != name and not p["metadata"].get("deletionTimestamp")
                                       and condition(p.get("status") or {}, "Ready").get("status") == "True"] or None,
                              timeout=120, what="the replacement pod Ready")
    # The API server caches token reviews for a few seconds, so it may still vouch for the token; the
    # operator's own check of the pod refuses it then.
    replayed = ask(replacement["metadata"]["name"], sidecars_own)
    assert (replayed.startswith("401 the token is not a valid service-account token")
            or replayed == f"403 pod {namespace}/{name} does not exist (any more): its token outlived it"), replayed
