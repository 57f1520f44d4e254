"""Figure 6: the operator at scale: time and memory to bring many bindings to Ready, then memory with
many injected pods existing.

Bindings (one namespace, one cert-manager CA Issuer) are created IN_FLIGHT at a time by a load
generator process; the clock runs from the first create until every binding reports Ready=True, read
by listing them every POLL_SECONDS (so times are +- that). cert-manager issuing each Certificate is on
that path, so when all Certificates existed (the operator's part) and were Ready (cert-manager's) is
shown next to it.

Then pods naming those bindings round-robin are created as the webhook leaves them (built by the
operator's own inject_pod), with the webhook unregistered: figure 4 measures admission, this one the
operator's cost of injected pods existing (it watches them and counts them in each binding's status).
Its RSS is read once the statuses count every pod.

Each wait is bounded (see Bounds); a figure that runs out of time reports how far it got.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from dataclasses import dataclass

from rolesanywhere_devkit.processes import TimedOut, wait_for
from rolesanywhere_operator import constants as c

from .admission import WebhookSwitch, create_binding
from .context import Context
from .procstat import cpu_seconds, rss_mib
from .profiling import Sampler
from .report import FigureResult, Row

TITLE = "6 operator at scale"
POLL_SECONDS = 1.0
IN_FLIGHT = 50
RSS_GOAL_MIB = 150
BINDINGS_TIMEOUT = 420  # seconds for all bindings to be Ready
PODS_TIMEOUT = 240  # seconds for the statuses to count every pod
#: Frames whose share of the operator's samples the profile reports.
PROFILED_FRAMES = (
    "Reconciler.reconcile",
    "Reconciler.refresh",
    "certificate_changed",
    "stdlib json",
    "stdlib logging",
)


def _ready(item: dict) -> bool:
    return any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (item.get("status") or {}).get("conditions") or []
    )


@dataclass
class Progress:
    """What the last poll saw; `at` is seconds since the first create."""

    certificates: int = 0
    certificates_issued: int = 0
    bindings_ready: int = 0
    pods_counted: int = 0
    all_certificates_at: float | None = None
    all_issued_at: float | None = None
    all_ready_at: float | None = None


def injected_pods(namespace: str, bindings: list[dict], count: int) -> list[dict]:
    """`count` pods as the webhook leaves them, naming `bindings` round-robin."""
    from rolesanywhere_operator.injection import inject_pod
    from rolesanywhere_operator.settings import Settings
    from rolesanywhere_operator.spec import parse_binding

    from .admission import pod

    parsed = []
    for manifest in bindings:
        body = json.loads(json.dumps(manifest))
        body["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()))
        parsed.append(parse_binding(body))
    settings = Settings()
    pods = []
    for index in range(count):
        binding = parsed[index % len(parsed)]
        plain = pod(f"pod-{index:05d}", binding.name)
        plain["metadata"]["namespace"] = namespace
        pods.append(inject_pod(plain, binding, settings).pod)
    return pods


def measure(ctx: Context) -> FigureResult:
    from rolesanywhere_devkit.operator import binding

    operator = ctx.kube.ensure_operator()
    cluster = ctx.kube.ensure_cluster()
    pid = operator.process.pid
    namespace = cluster.create_namespace(f"bench-scale-{uuid.uuid4().hex[:6]}")
    w = ctx.aws.workload
    arns = {"trust_anchor_arn": w.trust_anchor_arn, "profile_arn": w.profile_arn, "role_arn": w.role_arn}
    create_binding(cluster, namespace, "seed", arns)  # also makes the CA Issuer "ca"
    bindings_path = f"/apis/{c.API_VERSION}/namespaces/{namespace}/{c.PLURAL}"
    certificates_path = (
        f"/apis/{c.CERT_MANAGER_GROUP}/{c.CERT_MANAGER_VERSION}/namespaces/{namespace}/{c.CERTIFICATES}"
    )
    count, pod_count = ctx.scale.bindings, ctx.scale.injected_pods
    manifests = [binding(f"b{i:05d}", **arns) for i in range(count)]
    wanted = {m["metadata"]["name"] for m in manifests}
    directory = ctx.directory("scale")
    progress = Progress()
    peak = rss_idle = rss_mib(pid)
    cpu_before = cpu_seconds(pid)

    # --- Bindings to Ready ---
    sampler = Sampler(pid, directory / "operator-bindings.pyspy", rate=50)
    started = time.monotonic()
    try:
        created = cluster.create_all(bindings_path, manifests, IN_FLIGHT, directory)["seconds"]
        with cluster.api() as api:
            while time.monotonic() - started < BINDINGS_TIMEOUT:
                peak = max(peak, rss_mib(pid))
                at = time.monotonic() - started
                items = [i for i in api.get(bindings_path).raise_for_status().json()["items"]
                         if i["metadata"]["name"] in wanted]  # fmt: skip
                progress.bindings_ready = sum(1 for item in items if _ready(item))
                if progress.all_issued_at is None:
                    certificates = [i for i in api.get(certificates_path).raise_for_status().json()["items"]
                                    if i["metadata"]["name"].removeprefix("rolesanywhere-") in wanted]  # fmt: skip
                    progress.certificates = len(certificates)
                    progress.certificates_issued = sum(1 for item in certificates if _ready(item))
                    if progress.all_certificates_at is None and progress.certificates == count:
                        progress.all_certificates_at = at
                    if progress.certificates_issued == count:
                        progress.all_issued_at = at
                if progress.bindings_ready == count:
                    progress.all_ready_at = at
                    break
                time.sleep(POLL_SECONDS)  # the sampling interval of the measurement
    finally:
        sampler.stop()
    reconcile_cpu = cpu_seconds(pid) - cpu_before
    rss_bindings = rss_mib(pid)

    # --- Injected pods existing ---
    switch = WebhookSwitch(cluster, operator.webhook_configuration, namespace, "seed")
    switch.set(False)
    try:
        pods_report = cluster.create_all(f"/api/v1/namespaces/{namespace}/pods",
                                         injected_pods(namespace, manifests, pod_count), IN_FLIGHT, directory)  # fmt: skip
    finally:
        switch.set(True)
    pods_started = time.monotonic()

    def counted() -> bool:
        nonlocal peak
        peak = max(peak, rss_mib(pid))
        with cluster.api() as api:
            items = api.get(bindings_path).raise_for_status().json()["items"]
        progress.pods_counted = sum(((item.get("status") or {}).get("pods") or {}).get("total", 0)
                                    for item in items if item["metadata"]["name"] in wanted)  # fmt: skip
        return progress.pods_counted >= pod_count or time.monotonic() - pods_started > PODS_TIMEOUT

    wait_for(
        counted, timeout=PODS_TIMEOUT + 60, interval=POLL_SECONDS, what="binding statuses to count the pods"
    )
    pods_waited = time.monotonic() - pods_started
    rss_pods = rss_mib(pid)
    census = _census(ctx, pid)

    result = FigureResult(TITLE)
    ready_note = (
        f"creates took {created:.1f} s; all Certificates existed at {_at(progress.all_certificates_at)}, "
        f"all Ready (cert-manager) at {_at(progress.all_issued_at)}; operator CPU {reconcile_cpu:.0f} s "
        f"({reconcile_cpu / count * 1000:.0f} ms per binding)"
    )
    if progress.all_ready_at is None:
        result.rows.append(Row(TITLE, f"{count} bindings: Ready after {BINDINGS_TIMEOUT} s", progress.bindings_ready,
                               None, "bindings", note=f"not all Ready in time; {ready_note}"))  # fmt: skip
    else:
        result.rows.append(Row(TITLE, f"{count} bindings: time to all Ready", progress.all_ready_at, None, "s",
                               note=ready_note))  # fmt: skip
    pods_note = (
        f"pods created in {pods_report['seconds']:.1f} s; statuses counted {progress.pods_counted} of them "
        f"{pods_waited:.0f} s after the last create"
    )
    result.rows += [
        Row(TITLE, f"operator RSS, {progress.bindings_ready} bindings Ready", rss_bindings, None, "MiB",
            f"< {RSS_GOAL_MIB} MiB", rss_bindings < RSS_GOAL_MIB,
            f"idle before: {rss_idle:.0f} MiB; {(rss_bindings - rss_idle) * 1024 / max(1, count):.0f} KiB more per binding"),
        Row(TITLE, f"operator RSS, {pod_count} injected pods existing", rss_pods, None, "MiB", note=pods_note),
        Row(TITLE, "operator peak RSS during the figure", peak, None, "MiB", note=f"sampled every {POLL_SECONDS:g} s"),
    ]  # fmt: skip
    result.findings.append(
        f"**Profile (py-spy on the operator while the bindings were reconciled).** "
        f"{sampler.summary(inclusive=PROFILED_FRAMES)}"
    )
    if (
        progress.all_ready_at is not None
        and progress.all_certificates_at is not None
        and progress.all_issued_at
    ):
        result.findings.append(
            f"**Where the time goes.** The operator had created all {count} Certificates "
            f"{progress.all_certificates_at:.0f} s after the first create; cert-manager had issued them all at "
            f"{progress.all_issued_at:.0f} s; every binding reported Ready at {progress.all_ready_at:.0f} s. "
            f"cert-manager here is hack/tools/cert-manager (client limit 50 requests/s, 2 workers per controller), "
            f"sharing the machine's cores with the API server and the operator."
        )
    result.findings.append(census)
    return result


def _at(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s"


def _census(ctx: Context, pid: int) -> str:
    """The operator's own count of what it holds (bench/operator_census.py), as one paragraph."""
    path = ctx.kube.census_file
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    try:
        wait_for(path.exists, timeout=60, interval=0.2, what="the operator's memory census")
    except TimedOut as error:
        return f"**Memory census.** not taken: {error}"
    data = json.loads(path.read_text())
    top = ", ".join(f"{name} {number:,} objects {size / 2**20:.1f} MiB" for name, number, size in data["top"])
    tasks = ", ".join(f"{name} {number:,}" for name, number in data["top_tasks"])
    return (
        f"**Memory census of the operator (gc, at the end).** Live Python objects (shallow sizes, the strings "
        f"and bytes they hold included) add up to {data['bytes'] / 2**20:.0f} MiB of its {rss_mib(pid):.0f} MiB "
        f"RSS; largest types: {top}. asyncio tasks: {data['tasks']:,} ({tasks})."
    )
