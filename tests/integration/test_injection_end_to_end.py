"""End to end: a Deployment's pod, created by kube-controller-manager and injected by the webhook, run
with the pod runner: its sidecar gets credentials from the Roles Anywhere emulator with the certificate
cert-manager issued, and the app lists buckets on a moto S3. Without the annotation, the same pod spec
gets a credentials error.

The tests that run pods (marker `podrunner`) are the no-root path: where the node tier runs (as root),
they are skipped, and tests/node/test_credentials_on_node.py checks the same in real containers.

The profile has AWS's defaults (it accepts no role session name) unless a test is about session names;
the operator verifies every binding with a real CreateSession (the CredentialsVerified condition).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from localcluster import pki
from localcluster.podrunner import PodRunner, PodRunnerError
from rolesanywhere_devkit.aws import ACCOUNT_ID, S3_READ_ONLY_POLICY, EmulatorProcess, arn, emulator_config
from rolesanywhere_devkit.operator import (
    OperatorProcess,
    binding,
    binding_status,
    ca_issuer,
    condition,
    deployment,
    grant_secret_read,
    pods,
    sidecar_endpoint,
)
from rolesanywhere_devkit.processes import wait_for

TIMEOUT = 60
OPERATOR = str(Path(sys.executable).with_name("rolesanywhere-operator"))


@pytest.fixture(scope="module")
def operator(cluster, tmp_path_factory):
    """The operator with verification on; repeated every few seconds, so a role created after its binding
    (the trust-policy test) is seen without waiting for the hour of the default interval, and with a rate
    that lets every binding of the module (those of finished tests linger while their namespace goes) be
    verified that often."""
    process = OperatorProcess(
        cluster, tmp_path_factory.mktemp("operator"), verify_credentials=True,
        extra_args=("--verify-interval=2", "--verify-rate=50"),
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def roles_anywhere(moto_server, rolesanywhere_ca, emulator_factory):
    """An emulator with a profile as AWS creates it by default, one that accepts role session names, and a
    disabled one; all list the same S3 read-only role."""
    role_arn = moto_server.create_role(f"s3-read-only-{uuid.uuid4().hex[:8]}", S3_READ_ONLY_POLICY)
    trust_anchor_arn = arn("trust-anchor")
    profiles = {"default": arn("profile"), "named": arn("profile"), "disabled": arn("profile"),
                "pinned": arn("profile")}
    pinned_role = f"pinned-{uuid.uuid4().hex[:8]}"  # created by the trust-policy test
    trust_anchor = {"arn": trust_anchor_arn, "caBundle": str(rolesanywhere_ca.bundle_path)}
    profile_list = [
        {"arn": profiles["default"], "roleArns": [role_arn]},
        {"arn": profiles["named"], "roleArns": [role_arn], "acceptRoleSessionName": True},
        {"arn": profiles["disabled"], "roleArns": [role_arn], "enabled": False},
        {"arn": profiles["pinned"], "roleArns": [f"arn:aws:iam::{ACCOUNT_ID}:role/{pinned_role}"]},
    ]

    def start(**anchor_changes) -> EmulatorProcess:
        trust_anchors = [{**trust_anchor, **anchor_changes}]
        return emulator_factory(emulator_config(moto_server, trust_anchors=trust_anchors, profiles=profile_list))

    return {"emulator": start(), "start": start, "trust_anchor_arn": trust_anchor_arn, "profiles": profiles,
            "role_arn": role_arn, "pinned_role": pinned_role}


def arns(ra: dict, profile: str = "default", role_arn: str | None = None) -> dict:
    return {
        "trust_anchor_arn": ra["trust_anchor_arn"],
        "profile_arn": ra["profiles"][profile],
        "role_arn": role_arn or ra["role_arn"],
    }


def create_binding(cluster, namespace, ra, name: str, *, profile: str = "default", issuer: str = "ca", **spec):
    grant_secret_read(cluster, namespace)  # the verification signs with the binding's key
    cluster.apply(
        binding(name, **arns(ra, profile, spec.pop("role_arn", None)), issuer=issuer, sessionDuration=900,
                sidecar=sidecar_endpoint(ra["emulator"].url), **spec),
        namespace,
    )


def verified(cluster, namespace: str, name: str, status: str) -> dict:
    """The binding's CredentialsVerified condition, once it has `status`."""

    def reached():
        found = condition(binding_status(cluster, namespace, name), "CredentialsVerified")
        return found if found.get("status") == status else None

    return wait_for(reached, timeout=TIMEOUT, what=f"CredentialsVerified={status} on binding {name}")


def only_pod(cluster, namespace: str, selector: str) -> dict:
    def one():
        found = pods(cluster, namespace, selector)
        return found[0] if len(found) == 1 else None

    return wait_for(one, timeout=TIMEOUT, what=f"one pod {selector} in {namespace}")


def annotated_app(cluster, namespace, moto_server, name: str, binding_name: str | None, command: list[str]) -> dict:
    annotations = {"rolesanywhere.dev/binding": binding_name} if binding_name else {}
    env = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    cluster.apply(deployment(name, annotations=annotations, env=env, command=command), namespace)
    return only_pod(cluster, namespace, f"app={name}")


def http_get(port: int, path: str, token: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Authorization": token})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def caller_arn(runner: PodRunner) -> str:
    identity = runner.run("app", ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"])
    assert identity.returncode == 0, identity.stderr
    return identity.stdout.strip()


@pytest.mark.podrunner("tests/node/test_credentials_on_node.py::test_the_app_as_a_non_root_uid_uses_the_credentials_through_the_endpoint_with_boto3 and test_an_unannotated_deployments_app_finds_no_credentials")
def test_an_annotated_deployments_pod_lists_buckets_and_an_unannotated_one_cannot(
    cluster, namespace, operator, roles_anywhere, moto_server, rolesanywhere_ca, tmp_path
):
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    create_binding(cluster, namespace, roles_anywhere, "s3-reader")
    accepted = verified(cluster, namespace, "s3-reader", "True")
    status = binding_status(cluster, namespace, "s3-reader")
    assert condition(status, "Ready")["status"] == "True"
    serial = status["certificate"]["serialNumber"]
    assert accepted["reason"] == "Accepted" and f"serial {serial}" in accepted["message"]
    listed_row = cluster.kubectl("get", "rab", "s3-reader", "-n", namespace).stdout.splitlines()
    assert "VERIFIED" in listed_row[0] and listed_row[1].split()[1:3] == ["True", "True"], listed_row

    list_buckets = ["aws", "s3", "ls"]
    injected = annotated_app(cluster, namespace, moto_server, "with-role", "s3-reader", list_buckets)
    assert injected["metadata"]["labels"]["rolesanywhere.dev/injected-binding"] == "s3-reader"
    with PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, injected["metadata"]["name"],
                   tmp_path / "with-role") as runner:
        listed = runner.run("app")
        assert listed.returncode == 0, listed.stderr
        assert bucket in listed.stdout
        # No session name was sent, so the service named the session after the certificate's serial.
        assert int(caller_arn(runner).rsplit("/", 1)[1], 16) == int(serial, 16)
        # The app container sees the credentials, never the private key.
        assert "ROLESANYWHERE_PRIVATE_KEY" not in runner.env("app")
        # The sidecar's probes are requests to its health port (the startupProbe passed before the app
        # ran), which answers the readinessProbe too and hands out no credentials, even for the token.
        assert runner.probe("rolesanywhere-sidecar", "readinessProbe").passed
        token = Path(runner.env("app")["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read_text()
        health_port = int(runner.env("rolesanywhere-sidecar")["ROLESANYWHERE_HEALTH_PORT"])
        assert http_get(health_port, "/v1/credentials", token)[0] == 404
        status, metrics = http_get(health_port, "/metrics", token)
        assert status == 200 and 'rolesanywhere_sidecar_create_session_total{outcome="success"}' in metrics

    plain = annotated_app(cluster, namespace, moto_server, "without-role", None, list_buckets)
    with PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, plain["metadata"]["name"],
                   tmp_path / "without-role") as runner:
        denied = runner.run("app")
    assert denied.returncode != 0
    assert "Unable to locate credentials" in denied.stderr


@pytest.mark.podrunner("tests/node/test_credentials_on_node.py::test_the_pods_name_as_session_name_holds_the_pod_back_on_a_default_profile_and_the_log_says_why")
def test_the_pods_name_as_session_name_is_refused_by_a_default_profile_and_both_say_how_to_fix_it(
    cluster, namespace, operator, roles_anywhere, moto_server, rolesanywhere_ca, tmp_path
):
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    create_binding(cluster, namespace, roles_anywhere, "named", roleSessionName={"source": "PodName"})
    refused = verified(cluster, namespace, "named", "False")
    assert refused["reason"] == "RoleSessionNameNotAccepted"
    for text in ("does not accept role session names", "remove spec.roleSessionName", "--accept-role-session-name"):
        assert text in refused["message"]
    ready = condition(binding_status(cluster, namespace, "named"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RoleSessionNameNotAccepted")
    described = cluster.kubectl("describe", "rab", "named", "-n", namespace).stdout
    assert "RoleSessionNameNotAccepted" in described and "Warning" in described  # condition and Event

    pod = annotated_app(cluster, namespace, moto_server, "named-app", "named", ["true"])
    runner = PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, pod["metadata"]["name"], tmp_path / "named",
                       timeout=15)
    with pytest.raises(PodRunnerError) as not_started, runner:
        pass
    log = str(not_started.value)
    assert "startupProbe still failing" in log
    assert f"role session name '{pod['metadata']['name']}' is why" in log
    assert "does not accept role session names" in log and "--accept-role-session-name" in log


@pytest.mark.podrunner("tests/node/test_credentials_on_node.py::test_a_profile_that_accepts_session_names_shows_the_pods_name")
def test_a_profile_that_accepts_session_names_shows_the_pods_name(
    cluster, namespace, operator, roles_anywhere, moto_server, rolesanywhere_ca, tmp_path
):
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    create_binding(cluster, namespace, roles_anywhere, "named", profile="named", roleSessionName={"source": "PodName"})
    verified(cluster, namespace, "named", "True")
    pod = annotated_app(cluster, namespace, moto_server, "named-app", "named", ["sleep", "3600"])
    with PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, pod["metadata"]["name"],
                   tmp_path / "named") as runner:
        assert caller_arn(runner).endswith(f"/{pod['metadata']['name']}")  # what CloudTrail would show


@pytest.mark.podrunner("tests/node/test_credentials_on_node.py::test_delivery_endpoint_only_leaves_the_app_no_credentials_file")
def test_delivery_endpoint_only_gives_the_app_credentials_from_the_endpoint_and_no_credentials_file(
    cluster, namespace, operator, roles_anywhere, moto_server, rolesanywhere_ca, tmp_path
):
    """Review finding M4: whatever the app can read under its mounts holds the token at most, never the
    credentials; the sidecar's own copy (for its probe and its restarts) is in a volume only it mounts."""
    bucket = f"private-{uuid.uuid4().hex[:8]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    create_binding(cluster, namespace, roles_anywhere, "endpoint-only", delivery="EndpointOnly")
    verified(cluster, namespace, "endpoint-only", "True")
    pod = annotated_app(cluster, namespace, moto_server, "endpoint-only-app", "endpoint-only", ["aws", "s3", "ls"])
    with PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, pod["metadata"]["name"],
                   tmp_path / "endpoint-only") as runner:
        listed = runner.run("app")
        assert listed.returncode == 0, listed.stderr
        assert bucket in listed.stdout
        env = runner.env("app")
        assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in env and "AWS_SHARED_CREDENTIALS_FILE" not in env
        app = next(x for x in runner.pod["spec"]["containers"] if x["name"] == "app")
        seen = []
        for mount in app["volumeMounts"]:
            seen += [p.name for p in runner.local_path("app", mount["mountPath"]).rglob("*") if p.is_file()]
        assert "token" in seen
        assert not [name for name in seen if name.startswith("credentials")], seen
        sidecar_only = runner.local_path("rolesanywhere-sidecar", "/var/run/rolesanywhere-sidecar")
        assert sorted(p.name for p in sidecar_only.iterdir()) == ["credentials", "credentials.json"]


def other_ca_issuer(cluster, namespace: str) -> None:
    untrusted = pki.issue(f"Untrusted CA {uuid.uuid4().hex[:6]}", now=dt.datetime.now(dt.UTC), is_ca=True)
    ca_issuer(cluster, namespace, untrusted, name="other-ca")


@pytest.mark.parametrize(
    "case, spec, expected",
    [
        # Short names: the default common name <binding>.<namespace> must fit cert-manager's 64 characters.
        ("untrusted", {"issuer": "other-ca"}, "Untrusted Signing Certificate"),
        ("unlisted", {"role_arn": f"arn:aws:iam::{ACCOUNT_ID}:role/not-listed"}, "HTTP 403"),
        ("disabled", {"profile": "disabled"}, "is disabled"),
    ],
)
def test_a_binding_aws_refuses_shows_the_services_message(
    cluster, namespace, operator, roles_anywhere, rolesanywhere_ca, case, spec, expected
):
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    other_ca_issuer(cluster, namespace)
    create_binding(cluster, namespace, roles_anywhere, case, **spec)
    refused = verified(cluster, namespace, case, "False")
    assert refused["reason"] == "CreateSessionRefused"
    assert "AccessDeniedException" in refused["message"] and expected in refused["message"]
    row = cluster.kubectl("get", "rab", case, "-n", namespace).stdout.splitlines()[1].split()
    assert row[1:3] == ["False", "False"], row  # READY, VERIFIED


def test_the_generated_trust_policy_admits_its_binding_and_refuses_another(
    cluster, namespace, operator, roles_anywhere, moto_server, rolesanywhere_ca
):
    """Both bindings' certificates come from the same CA: only the subject tells them apart."""
    role_name = roles_anywhere["pinned_role"]
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role_name}"
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    for name in ("pinned", "other"):
        create_binding(cluster, namespace, roles_anywhere, name, profile="pinned", role_arn=role_arn)
    printed = subprocess.run(
        [OPERATOR, "trust-policy", f"{namespace}/pinned"], env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True, text=True, check=True, timeout=60,
    )
    policy = json.loads(printed.stdout)
    (statement,) = policy["Statement"]
    assert statement["Condition"]["StringEquals"] == {"aws:PrincipalTag/x509Subject/CN": f"pinned.{namespace}",
                                                      "aws:PrincipalTag/x509Subject/O": namespace}
    assert statement["Condition"]["ArnEquals"] == {"aws:SourceArn": roles_anywhere["trust_anchor_arn"]}
    # moto's own AssumeRole also checks its caller, the emulator's IAM user, against the trust policy.
    statement["Principal"]["AWS"] = moto_server.emulator_user.arn
    moto_server.create_role(role_name, S3_READ_ONLY_POLICY, trust_policy=policy)
    role_created = dt.datetime.now(dt.UTC).replace(microsecond=0)

    assert verified(cluster, namespace, "pinned", "True")["reason"] == "Accepted"

    def refused_since_the_role_exists():
        record = binding_status(cluster, namespace, "other").get("verification") or {}
        checked = dt.datetime.fromisoformat(record.get("time", "2000-01-01T00:00:00Z"))
        return record if checked > role_created else None

    record = wait_for(refused_since_the_role_exists, timeout=TIMEOUT,
                      what=f"binding other verified again: {binding_status(cluster, namespace, 'other')}")
    assert (record["accepted"], record["reason"]) == (False, "CreateSessionRefused")
    assert "AccessDeniedException" in record["message"]


# After this test, earlier full-suite runs saw the operator refresh nothing for a minute: its resync task
# had died on an Event it posted (kopf.event outside kopf's handlers raises LookupError), fixed since and
# held by tests/unit/test_operator_events.py.
def test_a_certificate_the_trust_anchors_crl_revokes_is_refused(
    cluster, namespace, operator, roles_anywhere, rolesanywhere_ca, tmp_path
):
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    create_binding(cluster, namespace, roles_anywhere, "revoked")
    verified(cluster, namespace, "revoked", "True")
    serial = binding_status(cluster, namespace, "revoked")["certificate"]["serialNumber"]
    crl = tmp_path / "root.crl"
    crl.write_bytes(pki.revocation_list(rolesanywhere_ca.root, int(serial, 16)).public_bytes(serialization.Encoding.PEM))
    revoking = roles_anywhere["start"](crls=[str(crl)])  # the same trust anchor, now with the CRL imported
    cluster.kubectl("patch", "rab", "revoked", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"sidecar": sidecar_endpoint(revoking.url)}}))
    refused = verified(cluster, namespace, "revoked", "False")
    assert refused["reason"] == "CreateSessionRefused"
    assert "AccessDeniedException: Untrusted Signing Certificate" in refused["message"]
    assert f"certificate serial {int(serial, 16)}" in refused["message"]
