"""End to end: a Deployment's pod, created by kube-controller-manager and injected by the webhook, run
with the pod runner: its sidecar gets credentials from the Roles Anywhere emulator with the certificate
cert-manager issued, and the app lists buckets on a moto S3. Without the annotation, the same pod spec
gets a credentials error."""

from __future__ import annotations

import uuid

import pytest
from localcluster.controlplane import wait_for
from localcluster.podrunner import PodRunner
from support.awsfakes import S3_READ_ONLY_POLICY, arn, emulator_config
from support.operator_harness import (
    binding,
    binding_status,
    ca_issuer,
    condition,
    deployment,
    pods,
)

TIMEOUT = 60


@pytest.fixture(scope="module")
def roles_anywhere(moto_server, rolesanywhere_ca, emulator_factory):
    """An emulator whose profile accepts role session names: the operator names each session after its pod."""
    role_arn = moto_server.create_role(f"s3-read-only-{uuid.uuid4().hex[:8]}", S3_READ_ONLY_POLICY)
    trust_anchor_arn, profile_arn = arn("trust-anchor"), arn("profile")
    emulator = emulator_factory(
        emulator_config(
            moto_server,
            trust_anchors=[{"arn": trust_anchor_arn, "caBundle": str(rolesanywhere_ca.bundle_path)}],
            profiles=[{"arn": profile_arn, "roleArns": [role_arn], "acceptRoleSessionName": True}],
        )
    )
    return {
        "emulator": emulator,
        "arns": {"trust_anchor_arn": trust_anchor_arn, "profile_arn": profile_arn, "role_arn": role_arn},
    }


def only_pod(cluster, namespace: str, selector: str) -> dict:
    def one():
        found = pods(cluster, namespace, selector)
        return found[0] if len(found) == 1 else None

    return wait_for(one, timeout=TIMEOUT, what=f"one pod {selector} in {namespace}")


def test_an_annotated_deployments_pod_lists_buckets_and_an_unannotated_one_cannot(
    cluster, namespace, operator, roles_anywhere, moto_server, rolesanywhere_ca, tmp_path
):
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    ca_issuer(cluster, namespace, rolesanywhere_ca.root)
    cluster.apply(
        binding(
            "s3-reader",
            **roles_anywhere["arns"],
            sessionDuration=900,
            sidecar={"endpoint": roles_anywhere["emulator"].url},
        ),
        namespace,
    )
    wait_for(
        lambda: condition(binding_status(cluster, namespace, "s3-reader"), "Ready").get("status") == "True",
        timeout=TIMEOUT,
        what="the binding to become Ready",
    )
    app_env = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    list_buckets = ["aws", "s3", "ls"]
    cluster.apply(
        deployment("with-role", annotations={"rolesanywhere.dev/binding": "s3-reader"}, env=app_env,
                   command=list_buckets),
        namespace,
    )
    cluster.apply(deployment("without-role", env=app_env, command=list_buckets), namespace)

    injected = only_pod(cluster, namespace, "app=with-role")
    assert injected["metadata"]["labels"]["rolesanywhere.dev/injected-binding"] == "s3-reader"
    with PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, injected["metadata"]["name"],
                   tmp_path / "with-role") as runner:
        listed = runner.run("app")
        assert listed.returncode == 0, listed.stderr
        assert bucket in listed.stdout
        # The session is named after the pod, so the audit trail shows which pod acted.
        identity = runner.run("app", ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"])
        assert identity.stdout.strip().endswith(f"/{injected['metadata']['name']}"), identity.stdout + identity.stderr
        # The app container sees the credentials, never the private key.
        assert "ROLESANYWHERE_PRIVATE_KEY" not in runner.env("app")

    plain = only_pod(cluster, namespace, "app=without-role")
    with PodRunner(cluster.bin_dir, cluster.kubeconfig, namespace, plain["metadata"]["name"],
                   tmp_path / "without-role") as runner:
        denied = runner.run("app")
    assert denied.returncode != 0
    assert "Unable to locate credentials" in denied.stderr
