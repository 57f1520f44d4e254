"""Figure 4: what the webhook adds to a Pod create, against the local API server.

The same pods (each naming a binding, so the webhook injects them) are created with the operator's
MutatingWebhookConfiguration registered and with it deleted, by a load generator process with 1 and
with 50 requests in flight. With the webhook deleted the pods lack the opt-in label as well: otherwise
the operator would see a few hundred pods that asked for credentials and got none (missed.py), and its
warnings about them would be what the next half measures. Each setting is split in two halves run in the order off, on, off, on, so
that a slow drift of the cluster (etcd growing) hits both alike. The operator keeps running
throughout; a server-side dry-run create tells when the API server has picked up a change.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from localcluster import pki
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator import constants as c

from .cluster import BenchCluster
from .context import Context
from .procstat import cpu_seconds, percentile, rss_mib, wait_until_quiet
from .profiling import Sampler
from .report import FigureResult, Row

TITLE = "4 admission (peer: webhook not registered)"
IN_FLIGHT = (1, 50)
GOAL_ADDED_P99_MS = 10.0
#: Frames whose share of the operator's samples the profile reports: the admission handler, the
#: pod-event handler and the status refresh it runs, and JSON decoding and logging underneath.
PROFILED_FRAMES = ("inject", "opted_in_pod_changed", "Reconciler.observe", "stdlib json", "stdlib logging")
BINDING = "bench"


def pod(name: str, binding: str, *, opted_in: bool = True) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {c.INJECT_LABEL: c.INJECT_LABEL_VALUE if opted_in else "false"},
                     "annotations": {c.BINDING_ANNOTATION: binding}},
        "spec": {"containers": [{"name": "app", "image": "app:1", "command": ["sleep", "3600"]}]},
    }


def create_binding(cluster: BenchCluster, namespace: str, name: str, arns: dict[str, str]) -> None:
    from rolesanywhere_devkit.operator import binding, ca_issuer

    ca = pki.issue(f"bench-ca-{namespace}", now=dt.datetime.now(dt.UTC), is_ca=True)
    ca_issuer(cluster, namespace, ca)
    cluster.apply(binding(name, **arns), namespace)


class WebhookSwitch:
    """Unregister and register the operator's webhook configuration by deleting and re-creating it."""

    def __init__(self, cluster: BenchCluster, name: str, namespace: str, binding: str) -> None:
        self.cluster, self.name, self.namespace, self.binding = cluster, name, namespace, binding
        saved = json.loads(cluster.kubectl("get", "mutatingwebhookconfiguration", name, "-o", "json").stdout)
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            saved["metadata"].pop(key, None)
        self.saved = saved

    def injected(self) -> bool:
        """Whether a dry-run pod create goes through the webhook now."""
        with self.cluster.api() as api:
            response = api.post(f"/api/v1/namespaces/{self.namespace}/pods", params={"dryRun": "All"},
                                json=pod(f"probe-{uuid.uuid4().hex[:8]}", self.binding))  # fmt: skip
        response.raise_for_status()
        return c.INJECTED_ANNOTATION in (response.json()["metadata"].get("annotations") or {})

    def set(self, registered: bool) -> None:
        if registered:
            self.cluster.kubectl("apply", "-f", "-", input=json.dumps(self.saved))
        else:
            self.cluster.kubectl("delete", "mutatingwebhookconfiguration", self.name, "--ignore-not-found")
        wait_for(lambda: self.injected() == registered, timeout=30, interval=0.1,
                 what=f"the API server to {'use' if registered else 'drop'} the webhook")  # fmt: skip


def measure(ctx: Context) -> FigureResult:
    operator = ctx.kube.ensure_operator()
    cluster = ctx.kube.ensure_cluster()
    namespace = cluster.create_namespace(f"bench-admission-{uuid.uuid4().hex[:6]}")
    create_binding(cluster, namespace, BINDING, _arns(ctx))
    switch = WebhookSwitch(cluster, operator.webhook_configuration, namespace, BINDING)
    wait_for(switch.injected, timeout=30, what="the webhook to inject a dry-run pod")
    latencies: dict[tuple[bool, int], list[float]] = {}
    seconds: dict[tuple[bool, int], float] = {}
    operator_cpu: dict[int, float] = {}
    half = max(1, ctx.scale.admission_pods // 2)
    directory = ctx.directory("admission")
    profiled = max(IN_FLIGHT)
    sampler = None
    settled: list[float] = []
    try:
        for in_flight in IN_FLIGHT:
            for registered in (False, True, False, True):
                switch.set(registered)
                # The pods of the previous half made the operator refresh their binding's status; let it
                # finish, so each half measures admission, not the operator's catching up.
                settled.append(wait_until_quiet(operator.process.pid))
                names = [
                    f"p{in_flight}-{'on' if registered else 'off'}-{uuid.uuid4().hex[:10]}"
                    for _ in range(half)
                ]
                before = cpu_seconds(operator.process.pid)
                if registered and in_flight == profiled and sampler is None:
                    sampler = Sampler(operator.process.pid, directory / "operator.pyspy")
                report = cluster.create_all(f"/api/v1/namespaces/{namespace}/pods",
                                            [pod(name, BINDING, opted_in=registered) for name in names], in_flight,
                                            directory)  # fmt: skip
                if sampler is not None:
                    sampler.stop()
                if registered:
                    operator_cpu[in_flight] = (
                        operator_cpu.get(in_flight, 0.0) + cpu_seconds(operator.process.pid) - before
                    )
                latencies.setdefault((registered, in_flight), []).extend(report["latencies_ms"])
                seconds[registered, in_flight] = seconds.get((registered, in_flight), 0.0) + report["seconds"]
    finally:
        if sampler is not None:
            sampler.stop()
        switch.set(True)
    result = FigureResult(TITLE)
    for in_flight in IN_FLIGHT:
        on, off = latencies[True, in_flight], latencies[False, in_flight]
        added_p99 = percentile(on, 0.99) - percentile(off, 0.99)
        goal = f"< {GOAL_ADDED_P99_MS:g} ms" if in_flight == max(IN_FLIGHT) else ""
        result.rows += [
            Row(TITLE, f"{len(on)} creates, {in_flight} in flight: p50", percentile(on, 0.5), percentile(off, 0.5), "ms"),
            Row(TITLE, f"{len(on)} creates, {in_flight} in flight: p99", percentile(on, 0.99), percentile(off, 0.99), "ms"),
            Row(TITLE, f"{in_flight} in flight: p99 added by the webhook", added_p99, None, "ms", goal,
                added_p99 < GOAL_ADDED_P99_MS if goal else None,
                f"p50 added {percentile(on, 0.5) - percentile(off, 0.5):.1f} ms"),
            Row(TITLE, f"{in_flight} in flight: creates/s", len(on) / seconds[True, in_flight],
                len(off) / seconds[False, in_flight],
                note=f"operator CPU per admission {operator_cpu[in_flight] / len(on) * 1000:.2f} ms"),
        ]  # fmt: skip
    result.findings.append(
        f"**Profile (py-spy on the operator, one half of the {profiled}-in-flight creates with the webhook).** "
        + (sampler.summary(inclusive=PROFILED_FRAMES) if sampler else "not taken")
    )
    result.findings.append(
        f"Before each half the operator was let settle (under 5% of a core): it took up to {max(settled):.0f} s "
        f"(the status refreshes the previous half's injected pods caused)."
    )
    result.findings.append(
        f"The operator's RSS after these {sum(len(v) for k, v in latencies.items() if k[0])} injections: "
        f"{rss_mib(operator.process.pid):.0f} MiB. Every pod CREATE outside the excluded namespaces goes to "
        f"the webhook (annotations cannot be selected on), so pods that ask for no credentials pay a call too; "
        f"the webhook answers those without reading anything."
    )
    return result


def _arns(ctx: Context) -> dict[str, str]:
    w = ctx.aws.workload
    return {"trust_anchor_arn": w.trust_anchor_arn, "profile_arn": w.profile_arn, "role_arn": w.role_arn}
