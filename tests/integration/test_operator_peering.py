"""Two operator replicas peer through kopf: one reconciles, the other pauses, and takes over when the
first one goes away."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from localcluster import pki
from rolesanywhere_devkit.operator import (
    EXAMPLE_ARNS,
    OperatorProcess,
    binding,
    binding_status,
    ca_issuer,
    condition,
)
from rolesanywhere_devkit.processes import wait_for

PEERING_CRD = Path(__file__).resolve().parents[2] / "crds" / "clusterkopfpeerings.kopf.dev.yaml"
TIMEOUT = 45


def peering_state(log: str) -> str:
    """`working` or `paused`, from the last of kopf's peering transitions in an operator's log."""
    resumed, paused = log.rfind("Resuming operations"), log.rfind("Pausing operations")
    return "working" if resumed > paused else "paused"


def ready(cluster, namespace: str, name: str) -> bool:
    return condition(binding_status(cluster, namespace, name), "Ready").get("status") == "True"


def test_two_replicas_take_turns_through_peering(cluster, namespace, tmp_path):
    cluster.kubectl("apply", "--server-side", "-f", str(PEERING_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev")
    peering = f"test-{uuid.uuid4().hex[:8]}"
    replicas = [OperatorProcess(cluster, tmp_path / f"replica-{i}", extra_args=(f"--peering={peering}",))
                for i in range(2)]
    try:
        for replica in replicas:
            replica.start()
        assert cluster.kubectl("get", "clusterkopfpeering", peering).returncode == 0  # created at start-up

        # With a peering name, kopf starts paused and resumes only when no live peer has a higher priority;
        # a replica that resumed before it saw its peer pauses again.
        def working_replicas():
            return [r for r in replicas if peering_state(r.log()) == "working"]

        wait_for(lambda: len(working_replicas()) == 1, timeout=TIMEOUT, what="one replica to start working")
        active = working_replicas()[0]
        standby = next(r for r in replicas if r is not active)

        ca_issuer(cluster, namespace, pki.issue("shop CA", now=dt.datetime.now(dt.UTC), is_ca=True))
        cluster.apply(binding("first", **EXAMPLE_ARNS), namespace)
        wait_for(lambda: ready(cluster, namespace, "first"), timeout=TIMEOUT, what="the active replica's reconcile")
        assert "Creation is processed" in active.log()
        assert "Creation is processed" not in standby.log()  # the paused replica handled nothing

        active.stop()  # a graceful stop leaves the peering at once
        wait_for(lambda: peering_state(standby.log()) == "working", timeout=TIMEOUT,
                 what="the standby replica to resume")
        cluster.apply(binding("second", **EXAMPLE_ARNS), namespace)
        wait_for(lambda: ready(cluster, namespace, "second"), timeout=TIMEOUT, what="the standby replica's reconcile")
    finally:
        for replica in replicas:
            replica.stop()
        cluster.kubectl("delete", "clusterkopfpeering", peering, "--ignore-not-found", check=False)
