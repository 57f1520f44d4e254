"""With no operator answering, the Fail pod webhook holds up only the pods that opted in: every other pod,
in any namespace, is still created (so nothing the operator depends on waits for it)."""

from __future__ import annotations

import json
import uuid

from localcluster.controlplane import CERT_MANAGER_NAMESPACE
from rolesanywhere_devkit.operator import EXAMPLE_ARNS, OperatorProcess, binding, deployment, pods
from rolesanywhere_devkit.processes import wait_for

TIMEOUT = 60

OPT_IN = "--labels=rolesanywhere.dev/inject=true"


def run_pod(cluster, namespace: str, name: str, *args: str):
    return cluster.kubectl("run", name, "-n", namespace, "--image=app:1", *args, check=False)


def failed_creates(cluster, namespace: str) -> list[dict]:
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in events if e.get("reason") == "FailedCreate"]


def test_a_stopped_operator_holds_up_only_opted_in_pods(cluster, namespace, tmp_path):
    operator = OperatorProcess(
        cluster, tmp_path / "operator", extra_args=("--webhook-excluded-namespaces=" + CERT_MANAGER_NAMESPACE,)
    ).start()
    others = [f"other-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    created: list[tuple[str, str]] = []
    try:
        for other in others:
            cluster.kubectl("create", "namespace", other)
        operator.kill()  # as a crash: its webhook configuration stays, pointing at a port nobody serves

        for ns in [namespace, *others, CERT_MANAGER_NAMESPACE, "default"]:
            name = f"plain-{uuid.uuid4().hex[:6]}"
            # No label: never sent to the webhook, even when it names a binding.
            result = run_pod(cluster, ns, name, "--annotations=rolesanywhere.dev/binding=s3-reader")
            assert result.returncode == 0, f"an unlabelled pod in {ns} was held up: {result.stderr}"
            created.append((ns, name))

        refused = run_pod(cluster, namespace, "opted-in", OPT_IN, "--annotations=rolesanywhere.dev/binding=s3-reader")
        assert refused.returncode != 0, "an opted-in pod started without its credentials"
        assert 'failed calling webhook "inject.pods.rolesanywhere.dev"' in refused.stderr, refused.stderr

        # cert-manager's namespace is excluded: even a labelled pod there is created (its issuing of the
        # webhook's certificate must never wait for the webhook).
        name = f"labelled-{uuid.uuid4().hex[:6]}"
        result = run_pod(cluster, CERT_MANAGER_NAMESPACE, name, OPT_IN)
        assert result.returncode == 0, result.stderr
        created.append((CERT_MANAGER_NAMESPACE, name))

        # An opted-in Deployment's ReplicaSet is refused while nothing answers, and keeps trying: once the
        # operator is back, its pod is created, injected.
        cluster.apply(binding("s3-reader", **EXAMPLE_ARNS), namespace)
        web = deployment("web", template_annotations={"rolesanywhere.dev/binding": "s3-reader"})
        web["spec"]["template"]["metadata"]["labels"]["rolesanywhere.dev/inject"] = "true"
        cluster.apply(web, namespace)
        wait_for(lambda: failed_creates(cluster, namespace), timeout=TIMEOUT, what="the ReplicaSet's refused creates")
        assert pods(cluster, namespace, "app=web") == []
        operator.start()
        wait_for(lambda: pods(cluster, namespace, "app=web,rolesanywhere.dev/injected-binding=s3-reader"),
                 timeout=TIMEOUT, what="the Deployment's pod, injected, after the operator came back")
    finally:
        operator.stop()
        for ns, name in created:
            cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=false", check=False)
        for other in others:
            cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)
