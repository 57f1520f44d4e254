"""Pod injection through the real API server: pods that kube-controller-manager creates for Deployments,
Jobs and StatefulSets, pods left alone, re-submitted pods, and pods naming a missing binding."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from rolesanywhere_devkit.operator import EXAMPLE_ARNS, binding, deployment, pods
from rolesanywhere_devkit.processes import wait_for

TIMEOUT = 30
#: The label a bare pod opts in with (a workload's template gets it from the operator).
OPT_IN = "--labels=rolesanywhere.dev/inject=true"
CREDENTIALS_MOUNT = {"name": "rolesanywhere-credentials", "mountPath": "/var/run/secrets/rolesanywhere", "readOnly": True}


@pytest.fixture
def s3_reader(cluster, namespace, operator) -> str:
    """A binding named s3-reader in the test's namespace (its certificate does not matter here)."""
    cluster.apply(binding("s3-reader", **EXAMPLE_ARNS), namespace)
    return "s3-reader"


def wait_for_pods(cluster, namespace: str, selector: str) -> list[dict]:
    return wait_for(lambda: pods(cluster, namespace, selector), timeout=TIMEOUT, what=f"pods {selector} in {namespace}")


def assert_injected(pod: dict, *, app: str = "app") -> None:
    """The sidecar, its volumes and the app container's env and mount, as the webhook adds them."""
    metadata, spec = pod["metadata"], pod["spec"]
    assert metadata["labels"]["rolesanywhere.dev/injected-binding"] == "s3-reader"
    assert metadata["annotations"]["rolesanywhere.dev/injected"] == "s3-reader"
    sidecars = [c for c in spec["initContainers"] if c["name"] == "rolesanywhere-sidecar"]
    assert len(sidecars) == 1 and spec["initContainers"][0] is sidecars[0]
    assert sidecars[0]["restartPolicy"] == "Always"
    assert sidecars[0]["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "ra-health", "scheme": "HTTP"}
    assert {"name": "ra-health", "containerPort": 9912, "protocol": "TCP"} in sidecars[0]["ports"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["rolesanywhere-certificate"]["secret"]["secretName"] == "rolesanywhere-s3-reader-tls"
    assert volumes["rolesanywhere-credentials"]["emptyDir"]["medium"] == "Memory"
    (container,) = [c for c in spec["containers"] if c["name"] == app]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:9911/v1/credentials"
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == "/var/run/secrets/rolesanywhere/token"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert CREDENTIALS_MOUNT in container["volumeMounts"]
    assert all(m["name"] != "rolesanywhere-certificate" for m in container["volumeMounts"]), "app sees the key"
    assert 65532 in spec["securityContext"]["supplementalGroups"], "apps cannot read the sidecar's files"


def assert_untouched(pod: dict) -> None:
    assert "rolesanywhere.dev/injected-binding" not in (pod["metadata"].get("labels") or {})
    assert not pod["spec"].get("initContainers")
    assert all(not v["name"].startswith("rolesanywhere-") for v in pod["spec"].get("volumes") or [])
    assert all(not e["name"].startswith("AWS_") for c in pod["spec"]["containers"] for e in c.get("env") or [])


def test_annotating_a_deployment_injects_the_pods_its_replicaset_creates(cluster, namespace, s3_reader):
    cluster.apply(deployment("web"), namespace)
    (plain,) = wait_for_pods(cluster, namespace, "app=web")
    assert_untouched(plain)

    cluster.kubectl("annotate", "deployment", "web", "-n", namespace, "rolesanywhere.dev/binding=s3-reader")
    (pod,) = wait_for_pods(cluster, namespace, "app=web,rolesanywhere.dev/injected-binding=s3-reader")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert_injected(pod)

    cluster.kubectl("annotate", "deployment", "web", "-n", namespace, "rolesanywhere.dev/binding-")

    def template_annotations():
        template = cluster.get("deployment", "web", namespace)["spec"]["template"]["metadata"]
        return template.get("annotations") or {}

    wait_for(lambda: template_annotations() == {}, timeout=TIMEOUT, what="the template annotation to be removed")


def test_a_jobs_pod_and_a_statefulsets_pod_are_injected(cluster, namespace, s3_reader):
    container = {"name": "app", "image": "app:1", "command": ["true"]}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "nightly"},
        "spec": {
            "template": {
                # A Job's template is the user's: it carries the opt-in label next to the annotation.
                "metadata": {"labels": {"rolesanywhere.dev/inject": "true"},
                             "annotations": {"rolesanywhere.dev/binding": "s3-reader"}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            }
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "annotations": {"rolesanywhere.dev/binding": "s3-reader"}},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container]}},
        },
    }
    cluster.apply(job, namespace)
    cluster.apply(statefulset, namespace)
    (job_pod,) = wait_for_pods(cluster, namespace, "job-name=nightly")
    assert_injected(job_pod)
    (db_pod,) = wait_for_pods(cluster, namespace, "app=db,rolesanywhere.dev/injected-binding=s3-reader")
    assert db_pod["metadata"]["name"] == "db-0"
    assert_injected(db_pod)


def test_a_daemonsets_template_gets_the_annotation(cluster, namespace, s3_reader):
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "annotations": {"rolesanywhere.dev/binding": "s3-reader"}},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "a"}]}},
        },
    }
    cluster.apply(daemonset, namespace)

    def copied():
        annotations = cluster.get("daemonset", "agent", namespace)["spec"]["template"]["metadata"].get("annotations")
        return (annotations or {}).get("rolesanywhere.dev/binding") == "s3-reader"

    wait_for(copied, timeout=TIMEOUT, what="the DaemonSet's template to carry the binding annotation")


def test_an_injected_pod_resubmitted_is_not_injected_twice(cluster, namespace, s3_reader):
    cluster.kubectl("run", "once", "-n", namespace, "--image=app:1",
                    "--annotations=rolesanywhere.dev/binding=s3-reader", OPT_IN)
    injected = cluster.get("pod", "once", namespace)
    assert_injected(injected, app="once")

    resubmitted = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "twice",
            "labels": injected["metadata"]["labels"],
            "annotations": injected["metadata"]["annotations"],
        },
        "spec": injected["spec"],
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(resubmitted))
    again = cluster.get("pod", "twice", namespace)
    assert again["spec"]["initContainers"] == injected["spec"]["initContainers"]
    assert again["spec"]["containers"] == injected["spec"]["containers"]
    assert again["spec"]["volumes"] == injected["spec"]["volumes"]


def test_a_pod_naming_a_missing_binding_is_denied_naming_binding_and_namespace(cluster, namespace, operator):
    result = cluster.kubectl(
        "run", "lost", "-n", namespace, "--image=app:1", "--annotations=rolesanywhere.dev/binding=nope", OPT_IN,
        check=False
    )
    assert result.returncode != 0
    assert "RolesAnywhereBinding 'nope'" in result.stderr
    assert f"does not exist in namespace '{namespace}'" in result.stderr


def test_pods_in_kube_system_are_never_touched(cluster, operator):
    name = f"untouched-{operator.port}"
    cluster.kubectl("run", name, "-n", "kube-system", "--image=app:1", "--annotations=rolesanywhere.dev/binding=nope",
                    OPT_IN)
    try:
        assert_untouched(cluster.get("pod", name, "kube-system"))
    finally:
        cluster.kubectl("delete", "pod", name, "-n", "kube-system", "--wait=false")


def test_a_deleted_webhook_configuration_is_registered_again_within_one_resync(cluster, namespace, s3_reader,
                                                                             operator):
    before = cluster.get("mutatingwebhookconfiguration", operator.webhook_configuration)["metadata"]["uid"]
    cluster.kubectl("delete", "mutatingwebhookconfiguration", operator.webhook_configuration)

    def registered_again() -> bool:
        found = cluster.kubectl("get", "mutatingwebhookconfiguration", operator.webhook_configuration, "-o", "json",
                                check=False)
        return found.returncode == 0 and json.loads(found.stdout)["metadata"]["uid"] != before

    wait_for(registered_again, timeout=TIMEOUT, what="the webhook configuration created again (resync 2 s)")
    cluster.kubectl("run", "after-deletion", "-n", namespace, "--image=app:1",
                    "--annotations=rolesanywhere.dev/binding=s3-reader", OPT_IN)
    assert_injected(cluster.get("pod", "after-deletion", namespace), app="after-deletion")


def test_a_renewed_webhook_certificate_is_served_and_its_ca_registered(cluster, namespace, s3_reader, operator):
    def registered_ca() -> bytes:
        configuration = cluster.get("mutatingwebhookconfiguration", operator.webhook_configuration)
        bundles = {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]}
        assert len(bundles) == 1
        return base64.b64decode(bundles.pop())

    old_ca = registered_ca()
    new_ca = operator.renew_webhook_certificate()
    assert new_ca != old_ca
    wait_for(lambda: registered_ca() == new_ca, timeout=TIMEOUT, what="the renewed CA in the webhook configuration")
    # The API server now trusts only the new CA, so an injected pod proves the new certificate is served.
    cluster.kubectl("run", "after-renewal", "-n", namespace, "--image=app:1",
                    "--annotations=rolesanywhere.dev/binding=s3-reader", OPT_IN)
    assert_injected(cluster.get("pod", "after-renewal", namespace), app="after-renewal")


def test_admission_reads_bindings_from_the_watch_cache_and_sees_edits_and_deletions(cluster, namespace, s3_reader,
                                                                                    operator):
    """A binding the cache has costs admission no API call; one edited or deleted is seen as such."""

    def injected_from(pod_name: str) -> str:
        cluster.kubectl("run", pod_name, "-n", namespace, "--image=app:1",
                        "--annotations=rolesanywhere.dev/binding=s3-reader", OPT_IN)
        # Admission logs before it answers, naming the pod.
        lines = [line for line in operator.log().splitlines()
                 if f"injected the sidecar into pod {pod_name} in namespace {namespace} for binding s3-reader" in line]
        return lines[-1] if lines else ""

    # The first pod may come before the watch delivered the binding; the cache has it soon after.
    wait_for(lambda: "read from the watch cache" in injected_from(f"cached-{uuid.uuid4().hex[:6]}"),
             timeout=TIMEOUT, what="a pod injected from the watch cache")

    cluster.kubectl("patch", "rab", "s3-reader", "-n", namespace, "--type=merge", "-p", '{"spec":{"region":"eu-west-2"}}')

    def edited_region() -> bool:
        name = f"edited-{uuid.uuid4().hex[:6]}"
        injected_from(name)
        env = {e["name"]: e.get("value") for e in cluster.get("pod", name, namespace)["spec"]["containers"][0]["env"]}
        return env["AWS_REGION"] == "eu-west-2"

    wait_for(edited_region, timeout=TIMEOUT, what="a pod injected with the edited binding")

    cluster.kubectl("delete", "rab", "s3-reader", "-n", namespace)

    def refused() -> bool:
        result = cluster.kubectl("run", f"gone-{uuid.uuid4().hex[:6]}", "-n", namespace, "--image=app:1",
                                 "--annotations=rolesanywhere.dev/binding=s3-reader", OPT_IN, check=False)
        return result.returncode != 0 and "does not exist" in result.stderr

    wait_for(refused, timeout=TIMEOUT, what="pods naming the deleted binding to be refused")
RESTRICTED_APP = {
    "name": "app",
    "image": "app:1",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def test_an_injected_pod_passes_the_restricted_pod_security_standard(cluster, namespace, s3_reader):
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")

    def pod(name: str, container: dict) -> str:
        return json.dumps({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"rolesanywhere.dev/inject": "true"},
                         "annotations": {"rolesanywhere.dev/binding": "s3-reader"}},
            "spec": {"containers": [container]},
        })

    # The API server enforces the standard here: an app without a seccomp profile is refused.
    loose = {k: v for k, v in RESTRICTED_APP.items() if k != "securityContext"}
    refused = cluster.kubectl("create", "-n", namespace, "-f", "-", input=pod("loose", loose), check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr

    cluster.kubectl("create", "-n", namespace, "-f", "-", input=pod("strict", RESTRICTED_APP))
    injected = cluster.get("pod", "strict", namespace)
    assert_injected(injected)
    sidecar = injected["spec"]["initContainers"][0]
    assert sidecar["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ra-health", "scheme": "HTTP"}
