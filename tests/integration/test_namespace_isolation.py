"""Nothing a pod or a binding names reaches outside its namespace: a binding annotation that walks up the
API path is refused by the webhook before the operator reads anything, and the API server's audit log
shows the operator never asked for the other namespace's object."""

from __future__ import annotations

import json
import uuid

import pytest
from rolesanywhere_devkit.operator import EXAMPLE_ARNS, binding
from rolesanywhere_devkit.processes import wait_for

TIMEOUT = 30
VICTIM_ROLE = "arn:aws:iam::123456789012:role/s3-admin"


@pytest.fixture
def victim(cluster, operator):
    """Another namespace, holding a binding for a stronger role and a ConfigMap nobody else reads."""
    name = f"victim-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.apply(binding("s3-admin", **{**EXAMPLE_ARNS, "role_arn": VICTIM_ROLE}), name)
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stolen-config"},
                   "data": {"k": "v"}}, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def reads_of(cluster, namespace: str, name: str) -> list[dict]:
    """Requests for object `name` of `namespace` made by anything but this test's kubectl."""
    return [
        e for e in cluster.plane.audit_events()
        if (e.get("objectRef") or {}).get("namespace") == namespace
        and (e.get("objectRef") or {}).get("name") == name
        and not e.get("userAgent", "").startswith("kubectl/")
    ]


def test_a_binding_annotation_walking_up_the_path_is_refused_and_reads_nothing_elsewhere(
    cluster, namespace, victim, operator
):
    attempts = [
        f"../../{victim}/rolesanywherebindings/s3-admin",
        f"../../../../../../api/v1/namespaces/{victim}/configmaps/stolen-config",
    ]
    for annotation in attempts:
        # A server-side dry run is enough to read the mutated pod: no pod need be created.
        result = cluster.kubectl(
            "run", "probe", "-n", namespace, "--image=app:1", "--dry-run=server", "-o", "json",
            f"--annotations=rolesanywhere.dev/binding={annotation}", "--labels=rolesanywhere.dev/inject=true",
            check=False,
        )
        assert result.returncode != 0, f"the webhook admitted {annotation!r}: {result.stdout}"
        assert "annotation rolesanywhere.dev/binding: expected a Kubernetes name" in result.stderr
        assert VICTIM_ROLE not in result.stdout + result.stderr

    if cluster.plane is None:
        pytest.skip("no audit log on a cluster given by ROLESANYWHERE_TEST_KUBECONFIG")
    # The log is in order: once this test's own read is there, any read the webhook made is too.
    cluster.kubectl("get", "configmap", "stolen-config", "-n", victim)
    wait_for(
        lambda: any(e.get("userAgent", "").startswith("kubectl/") and e["verb"] == "get"
                    and (e.get("objectRef") or {}).get("name") == "stolen-config"
                    and (e.get("objectRef") or {}).get("namespace") == victim
                    for e in cluster.plane.audit_events()),
        timeout=TIMEOUT, what="this test's own read in the audit log",
    )
    assert reads_of(cluster, victim, "stolen-config") == []


def test_a_binding_named_in_the_pods_namespace_is_still_injected(cluster, namespace, victim, operator):
    """The check refuses only what is not a name: a plain name of the pod's namespace works as before."""
    cluster.apply(binding("s3-admin", **EXAMPLE_ARNS), namespace)
    result = cluster.kubectl(
        "run", "probe", "-n", namespace, "--image=app:1", "--dry-run=server", "-o", "json",
        "--annotations=rolesanywhere.dev/binding=s3-admin", "--labels=rolesanywhere.dev/inject=true",
    )
    pod = json.loads(result.stdout)
    sidecar = next(c for c in pod["spec"]["initContainers"] if c["name"] == "rolesanywhere-sidecar")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["ROLESANYWHERE_ROLE_ARN"] == EXAMPLE_ARNS["role_arn"] != VICTIM_ROLE
