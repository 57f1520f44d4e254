"""Credentials in real pods: the chart-installed operator injects pods on the node, whose sidecar (from the
image built from the Dockerfile) gets credentials from the Roles Anywhere emulator with the certificate
cert-manager issued, and whose app container, a non-root uid with no fsGroup, uses them against moto's S3.

moto and the emulator run on the host, listening on the node's address (node_rolesanywhere); the sessions
they hand out last two minutes, so the sidecar refreshes every ~10 s.
"""

from __future__ import annotations

import base64
import configparser
import json
import re
import uuid
from pathlib import Path

import pytest
from rolesanywhere_devkit.aws import arn
from rolesanywhere_devkit.nodepods import (
    APP_USER,
    RESTRICTED,
    app_container,
    app_deployment,
    app_job,
    exec_in,
    install_operator_chart,
    logs,
    only_pod,
    opt_in,
    parse_time,
    pod,
    renew_certificate,
    statuses,
    wait_for_ready,
)
from rolesanywhere_devkit.operator import (
    binding,
    binding_status,
    ca_issuer,
    condition,
    grant_secret_read,
    sidecar_endpoint,
)
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator import constants as c
from rolesanywhere_sidecar.contract import CREDENTIALS_FILE, CREDENTIALS_JSON_FILE

BINDING = "s3-reader"
SLEEP = ["sleep", "infinity"]
#: HTTP status of an accepted CreateSession.
CREATED = 201
CREDENTIALS_FILE_PATH = f"{c.CREDENTIALS_MOUNT_PATH}/{CREDENTIALS_FILE}"
#: A refresh in the sidecar's log: the certificate's serial and the access key id it got.
REFRESHED = re.compile(r'credentials refreshed certificate_serial="([0-9a-f]+)".* access_key_id="(\w+)"')
#: The app's SDK with the endpoint alone (the file's variable is not set for delivery Endpoint anyway).
BOTO3_THROUGH_THE_ENDPOINT = """
import boto3
session = boto3.Session()
print("provider:", session.get_credentials().method)
print("arn:", session.client("sts").get_caller_identity()["Arn"])
print("buckets:", " ".join(b["Name"] for b in session.client("s3").list_buckets()["Buckets"]))
"""
#: A tool that reads files only: the endpoint's variables removed, the credentials file named.
CLI_THROUGH_THE_FILE = ["env", "-u", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "-u", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                        f"AWS_SHARED_CREDENTIALS_FILE={CREDENTIALS_FILE_PATH}", "aws", "s3", "ls"]


@pytest.fixture(scope="module")
def operator_chart(cluster, tmp_path_factory):
    install_operator_chart(cluster, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def bucket(node_rolesanywhere) -> str:
    name = f"node-reports-{uuid.uuid4().hex[:8]}"
    node_rolesanywhere.moto.client("s3").create_bucket(Bucket=name)
    return name


def app_env(ra) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": ra.moto.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}


def create_binding(cluster, namespace: str, ra, *, emulator=None, name: str = BINDING, profile_arn: str = "",
                   verified: str = "True", **spec) -> dict:
    """A CA Issuer of the trusted CA and a binding calling the emulator; its status once CredentialsVerified
    is `verified` (the operator, in its pod, made a CreateSession through the node's network)."""
    ca_issuer(cluster, namespace, ra.authorities.root)
    grant_secret_read(cluster, namespace)  # the verification signs with the binding's key
    arns = {"trust_anchor_arn": ra.trust_anchor_arn, "profile_arn": profile_arn or ra.profile_arn,
            "role_arn": ra.role_arn}
    cluster.apply(binding(name, sidecar=sidecar_endpoint((emulator or ra.emulator).url), **arns, **spec), namespace)

    def reached():
        status = binding_status(cluster, namespace, name)
        return status if condition(status, c.CONDITION_CREDENTIALS_VERIFIED).get("status") == verified else None

    return wait_for(reached, timeout=120, what=f"binding {name} to be CredentialsVerified={verified} "
                                                f"({binding_status(cluster, namespace, name)})")


def start_app(cluster, namespace: str, ra, name: str, *, binding_name: str | None = BINDING) -> dict:
    """The app's Deployment (annotated with `binding_name`, if any) and its one pod, once created."""
    cluster.apply(app_deployment(cluster, name, binding=binding_name, command=SLEEP, env=app_env(ra)), namespace)
    return only_pod(cluster, namespace, f"app={name}")


@pytest.fixture(scope="module")
def s3_app(cluster, operator_chart, node_rolesanywhere, bucket):
    """One namespace with a binding and an annotated Deployment of the app, 2/2 Ready: (namespace, pod)."""
    namespace = f"node-credentials-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0,
             timeout=60, what=f"the default service account in {namespace}")
    create_binding(cluster, namespace, node_rolesanywhere)
    found = start_app(cluster, namespace, node_rolesanywhere, "s3-app")
    yield namespace, wait_for_ready(cluster, namespace, found["metadata"]["name"])
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_app_as_a_non_root_uid_uses_the_credentials_through_the_endpoint_with_boto3(s3_app, bucket, cluster):
    namespace, found = s3_app
    name = found["metadata"]["name"]
    assert found["metadata"]["labels"][c.INJECTED_LABEL] == BINDING
    assert "fsGroup" not in found["spec"]["securityContext"]
    assert exec_in(cluster, namespace, name, "app", "id", "-u").stdout.strip() == str(APP_USER["runAsUser"])

    out = exec_in(cluster, namespace, name, "app", "python3", "-c", BOTO3_THROUGH_THE_ENDPOINT).stdout
    assert "provider: container-role" in out, out
    assert bucket in out.split("buckets:", 1)[1], out
    # No session name was sent, so the service named the session after the certificate's serial.
    serial = binding_status(cluster, namespace, BINDING)["certificate"]["serialNumber"]
    arn = out.split("arn:", 1)[1].split()[0]
    assert int(arn.rsplit("/", 1)[1], 16) == int(serial, 16), arn


def test_the_app_as_a_non_root_uid_uses_the_credentials_file_with_the_aws_cli(s3_app, bucket, cluster):
    namespace, found = s3_app
    listed = exec_in(cluster, namespace, found["metadata"]["name"], "app", *CLI_THROUGH_THE_FILE, check=False)
    assert listed.returncode == 0, listed.stderr
    assert bucket in listed.stdout
    # The file alone: without it the same command finds no credentials.
    without = [*CLI_THROUGH_THE_FILE[:-3], "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "aws", "s3", "ls"]
    denied = exec_in(cluster, namespace, found["metadata"]["name"], "app", *without, check=False)
    assert denied.returncode != 0 and "Unable to locate credentials" in denied.stderr


def test_the_sidecars_log_holds_no_secret(s3_app, cluster):
    namespace, found = s3_app
    name = found["metadata"]["name"]
    ini = configparser.ConfigParser()
    ini.read_string(exec_in(cluster, namespace, name, "app", "cat", CREDENTIALS_FILE_PATH).stdout)
    secret = cluster.get("secret", c.certificate_secret_name(BINDING), namespace)
    private_key = base64.b64decode(secret["data"][c.TLS_KEY_KEY]).decode()
    key_body = "".join(line for line in private_key.splitlines() if "-----" not in line)
    log = logs(cluster, namespace, name, c.SIDECAR_CONTAINER)
    assert "credentials refreshed" in log, log  # a log of a sidecar that did its work
    for what, value in (("secret access key", ini["default"]["aws_secret_access_key"]),
                        ("session token", ini["default"]["aws_session_token"]),
                        ("private key", key_body), ("private key", "PRIVATE KEY")):
        assert value and value not in log, f"the sidecar's log holds the {what}"
    token = exec_in(cluster, namespace, name, "app", "cat", f"{c.CREDENTIALS_MOUNT_PATH}/{c.TOKEN_FILE}").stdout.strip()
    assert token and token not in log, "the sidecar's log holds the endpoint's token"


def test_a_renewed_certificate_reaches_the_running_pod_and_the_next_create_session_uses_it(
    s3_app, cluster, node_rolesanywhere
):
    namespace, found = s3_app
    name = found["metadata"]["name"]
    before = binding_status(cluster, namespace, BINDING)["certificate"]["serialNumber"]
    renew_certificate(cluster, namespace, c.certificate_name(BINDING))

    def renewed():
        serial = (binding_status(cluster, namespace, BINDING).get("certificate") or {}).get("serialNumber")
        return serial if serial and int(serial, 16) != int(before, 16) else None

    after = int(wait_for(renewed, timeout=120, what="cert-manager to renew the binding's certificate"), 16)

    # The kubelet swaps the Secret's files in the running pod; the sidecar's next CreateSession signs with it.
    # (The operator verifies the renewed certificate too: only the sessions the sidecar logs count.)
    def refreshed_with_it():
        log = logs(cluster, namespace, name, c.SIDECAR_CONTAINER)
        keys = [key for serial, key in REFRESHED.findall(log) if int(serial, 16) == after]
        return keys[0] if keys else None

    access_key_id = wait_for(refreshed_with_it, timeout=180, interval=1,
                             what=f"the sidecar to refresh with the renewed certificate (serial {after:x})")
    (session,) = [s for s in node_rolesanywhere.emulator.sessions() if s.get("accessKeyId") == access_key_id]
    assert session["status"] == CREATED and int(session["serialNumberHex"], 16) == after, session
    now = cluster.get("pod", name, namespace)
    assert now["metadata"]["uid"] == found["metadata"]["uid"]
    assert {n: s["restartCount"] for n, s in statuses(now).items()} == {c.SIDECAR_CONTAINER: 0, "app": 0}
    assert logs(cluster, namespace, name, c.SIDECAR_CONTAINER).count("starting mode=") == 1  # the same process


def test_the_app_starts_only_after_the_sidecars_startup_probe_passed(
    cluster, namespace, operator_chart, node_rolesanywhere, emulator_factory
):
    """The first CreateSessions fail, so the sidecar retries for seconds; the app container starts only
    once the sidecar's startupProbe passed, and finds the credentials there from its first instant."""
    emulator = emulator_factory(node_rolesanywhere.document, host=cluster.host_for_pods)
    create_binding(cluster, namespace, node_rolesanywhere, emulator=emulator)
    emulator.clear_sessions()
    emulator.inject_fault(count=4)
    labels, annotations = opt_in(BINDING)
    at_start = f"test -r {CREDENTIALS_FILE_PATH} && echo credentials-at-start || echo no-credentials-at-start; sleep infinity"
    cluster.apply(pod("late", [app_container(cluster, ["sh", "-c", at_start], app_env(node_rolesanywhere))],
                      labels=labels, annotations=annotations, securityContext=APP_USER), namespace)
    found = wait_for_ready(cluster, namespace, "late")

    sessions = emulator.sessions()
    first_accepted = next(s for s in sessions if s["status"] == CREATED)
    assert [s["status"] for s in sessions[:4]] == [503] * 4, sessions  # the sidecar's start was held up
    app_started = parse_time(statuses(found)["app"]["state"]["running"]["startedAt"])
    assert app_started >= parse_time(first_accepted["time"]), (app_started, first_accepted)
    assert logs(cluster, namespace, "late", "app").strip() == "credentials-at-start"
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Unhealthy" and "Startup probe failed" in e.get("message", "") for e in events), \
        [e.get("message") for e in events]


def test_a_job_with_the_native_sidecar_completes(cluster, namespace, operator_chart, node_rolesanywhere, bucket):
    create_binding(cluster, namespace, node_rolesanywhere)
    cluster.apply(app_job(cluster, "list-once", binding=BINDING, command=["aws", "s3", "ls"],
                          env={**app_env(node_rolesanywhere)}), namespace)

    def complete():
        status = cluster.get("job", "list-once", namespace).get("status") or {}
        if status.get("failed"):
            raise AssertionError(f"the Job failed: {status}")
        return status if status.get("succeeded") == 1 else None

    wait_for(complete, timeout=180, interval=1, what="Job list-once to complete")
    found = only_pod(cluster, namespace, "app=list-once")
    assert found["status"]["phase"] == "Succeeded"
    assert found["metadata"]["labels"][c.INJECTED_LABEL] == BINDING
    # The sidecar was stopped once the app exited; the app listed the bucket.
    assert statuses(found)[c.SIDECAR_CONTAINER]["state"].get("terminated"), statuses(found)
    assert bucket in logs(cluster, namespace, found["metadata"]["name"], "app")


def test_an_injected_pod_runs_in_a_namespace_enforcing_the_restricted_profile(
    cluster, namespace, operator_chart, node_rolesanywhere, bucket
):
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/enforce-version=latest")
    create_binding(cluster, namespace, node_rolesanywhere)
    labels, annotations = opt_in(BINDING)
    app = app_container(cluster, SLEEP, app_env(node_rolesanywhere))
    assert app["securityContext"] == RESTRICTED
    # A bare Pod: Pod Security admission judges the pod as the webhook injected it, at creation.
    cluster.apply(pod("restricted", [app], labels=labels, annotations=annotations,
                      securityContext={**APP_USER, "seccompProfile": {"type": "RuntimeDefault"}}), namespace)
    found = wait_for_ready(cluster, namespace, "restricted")
    assert c.SIDECAR_CONTAINER in statuses(found)
    listed = exec_in(cluster, namespace, "restricted", "app", "aws", "s3", "ls", check=False)
    assert listed.returncode == 0 and bucket in listed.stdout, listed.stderr
    # The namespace does enforce it: a pod asking for privilege escalation is refused.
    refused = cluster.kubectl("run", "loose", "-n", namespace, "--image", cluster.image("app"),
                              f"--image-pull-policy={cluster.pull_policy}", "--restart=Never", check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr



def test_an_unannotated_deployments_app_finds_no_credentials(cluster, namespace, operator_chart, node_rolesanywhere):
    found = wait_for_ready(cluster, namespace, start_app(cluster, namespace, node_rolesanywhere, "plain",
                                                         binding_name=None)["metadata"]["name"])
    assert set(statuses(found)) == {"app"}  # not injected
    denied = exec_in(cluster, namespace, found["metadata"]["name"], "app", "aws", "s3", "ls", check=False)
    assert denied.returncode != 0 and "Unable to locate credentials" in denied.stderr


def test_the_pods_name_as_session_name_holds_the_pod_back_on_a_default_profile_and_the_log_says_why(
    cluster, namespace, operator_chart, node_rolesanywhere
):
    create_binding(cluster, namespace, node_rolesanywhere, verified="False", roleSessionName={"source": "PodName"})
    found = start_app(cluster, namespace, node_rolesanywhere, "named-app")
    name = found["metadata"]["name"]

    def explained():
        log = cluster.kubectl("logs", "-n", namespace, name, "-c", c.SIDECAR_CONTAINER, check=False).stdout
        return log if f"role session name '{name}' is why" in log else None

    log = wait_for(explained, timeout=120, what=f"the sidecar of {name} to say why CreateSession is refused")
    assert "does not accept role session names" in log and "--accept-role-session-name" in log
    now = cluster.get("pod", name, namespace)
    assert not statuses(now)[c.SIDECAR_CONTAINER].get("started")  # its startupProbe never passed
    assert "running" not in statuses(now)["app"]["state"]  # so the app never started


def test_a_profile_that_accepts_session_names_shows_the_pods_name(
    cluster, namespace, operator_chart, node_rolesanywhere, emulator_factory
):
    """The kubelet fills the pod's name in (downward API); the session is named after it."""
    ra = node_rolesanywhere
    named = arn("profile")
    profiles = [*ra.document["profiles"], {"arn": named, "roleArns": [ra.role_arn], "acceptRoleSessionName": True}]
    emulator = emulator_factory({**ra.document, "profiles": profiles}, host=cluster.host_for_pods)
    create_binding(cluster, namespace, ra, emulator=emulator, profile_arn=named, roleSessionName={"source": "PodName"})
    found = wait_for_ready(cluster, namespace, start_app(cluster, namespace, ra, "named-app")["metadata"]["name"])
    name = found["metadata"]["name"]
    caller = exec_in(cluster, namespace, name, "app", "aws", "sts", "get-caller-identity", "--query", "Arn",
                     "--output", "text").stdout.strip()
    assert caller.endswith(f"/{name}"), caller  # what CloudTrail would show


def test_delivery_endpoint_only_leaves_the_app_no_credentials_file(
    cluster, namespace, operator_chart, node_rolesanywhere, bucket
):
    """Whatever the app can read under its mounts holds the token at most; the sidecar's own copy of the
    credentials (for its probe and its restarts) is in a volume only it mounts."""
    create_binding(cluster, namespace, node_rolesanywhere, delivery=c.DELIVERY_ENDPOINT_ONLY)
    found = wait_for_ready(cluster, namespace, start_app(cluster, namespace, node_rolesanywhere, "endpoint-only")[
        "metadata"]["name"])
    name = found["metadata"]["name"]
    out = exec_in(cluster, namespace, name, "app", "python3", "-c", BOTO3_THROUGH_THE_ENDPOINT).stdout
    assert "provider: container-role" in out and bucket in out, out
    app = next(x for x in found["spec"]["containers"] if x["name"] == "app")
    # What the injection mounts in the app (the kubelet adds the service account's token volume, not ours).
    ours = [m["mountPath"] for m in app["volumeMounts"] if m["name"] == c.CREDENTIALS_VOLUME]
    seen = exec_in(cluster, namespace, name, "app", "find", *ours, "-type", "f").stdout.split()
    assert [Path(p).name for p in seen] == [c.TOKEN_FILE], seen
    own = exec_in(cluster, namespace, name, c.SIDECAR_CONTAINER, "ls", c.SIDECAR_CREDENTIALS_MOUNT_PATH).stdout
    assert sorted(own.split()) == sorted([CREDENTIALS_FILE, CREDENTIALS_JSON_FILE])
