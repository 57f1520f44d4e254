"""Figure 6: the operator at scale: a curve of memory and reconcile time as bindings are added (to each
of Scale.binding_steps in turn), the lag from a Certificate becoming Ready to its binding showing it,
then memory with many injected pods existing.

Bindings (one namespace, one cert-manager CA Issuer) are created IN_FLIGHT at a time by a load
generator process. Two watches (bench/readiness.py) time every binding and every Certificate to the
event: when each Certificate appeared (the operator's part) and became Ready (cert-manager's), and when
each binding became Ready. A step ends when its bindings all are; its reconcile time runs from its first
create. The operator's RSS is read then.

Then pods naming those bindings round-robin are created as the webhook leaves them (built by the
operator's own inject_pod), with the webhook unregistered: figure 4 measures admission, this one the
operator's cost of injected pods existing (it watches them and counts them in each binding's status).
Its RSS is read once the statuses count every pod.

Each wait is bounded; a step that runs out of time reports how far it got.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field

from rolesanywhere_devkit.processes import TimedOut, wait_for
from rolesanywhere_operator import constants as c

from .admission import WebhookSwitch, create_binding
from .context import Context
from .plot import scaling_png
from .procstat import cpu_seconds, percentile, rss_mib
from .profiling import Sampler
from .readiness import ReadyTimes
from .report import FigureResult, Row

TITLE = "6 operator at scale"
POLL_SECONDS = 0.5
IN_FLIGHT = 50
RSS_GOAL_MIB = 150
LAG_GOAL_SECONDS = 2.0
#: The point of the curve the issue's goals are for (1,000 bindings in the full run).
GOAL_STEP = 1
PODS_TIMEOUT = 240  # seconds for the statuses to count every pod
PLOT = "operator-scaling.png"
#: Frames whose share of the operator's samples the profile reports.
PROFILED_FRAMES = (
    "Reconciler.reconcile",
    "Reconciler.refresh",
    "certificate_changed",
    "stdlib json",
    "stdlib logging",
)


@dataclass
class Point:
    """One step of the curve: `bindings` existing once the `added` ones were all Ready (or it timed out)."""

    bindings: int
    added: int
    timeout: float  # seconds the step waited at most
    ready: int = 0  # of the added ones
    seconds: float = 0.0  # from the step's first create to its last binding Ready
    created_seconds: float = 0.0  # the load generator's creates
    certificates_at: float | None = None  # when the step's Certificates all existed (since its first create)
    issued_at: float | None = None  # ... and were all Ready
    rss_mib: float = 0.0
    cpu_seconds: float = 0.0
    lags: list[float] = field(default_factory=list)  # Certificate Ready -> binding Ready, seconds

    @property
    def timed_out(self) -> bool:
        return self.ready < self.added


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


def _pods_counted(obj: dict) -> int:
    return int(((obj.get("status") or {}).get("pods") or {}).get("total", 0))


class Watches:
    """The bindings' and the Certificates' watches, and the figure's peak RSS, sampled while it waits."""

    def __init__(self, ctx: Context, namespace: str, pid: int) -> None:
        cluster = ctx.kube.ensure_cluster()
        self.pid, self.peak = pid, rss_mib(pid)
        self.bindings = ReadyTimes(cluster.api, f"/apis/{c.API_VERSION}/namespaces/{namespace}/{c.PLURAL}",
                                   track=_pods_counted).start()  # fmt: skip
        self.certificates = ReadyTimes(
            cluster.api, f"/apis/{c.CERT_MANAGER_API_VERSION}/namespaces/{namespace}/{c.CERTIFICATES}"
        ).start()

    def wait(self, done, timeout: float) -> bool:
        """Poll `done()` until true or `timeout`; False when it timed out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.peak = max(self.peak, rss_mib(self.pid))
            for watch in (self.bindings, self.certificates):
                if watch.error:
                    raise RuntimeError(f"a watch of the figure failed: {watch.error}")
            if done():
                return True
            time.sleep(POLL_SECONDS)  # the sampling interval of the peak RSS
        return False

    def stop(self) -> None:
        self.bindings.stop()
        self.certificates.stop()


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
    directory = ctx.directory("scale")
    rss_idle = rss_mib(pid)
    watches = Watches(ctx, namespace, pid)
    manifests: list[dict] = []
    points: list[Point] = []

    # --- The curve: bindings added step by step, each step waited for until Ready ---
    sampler = Sampler(pid, directory / "operator-bindings.pyspy", rate=50)
    try:
        for total in ctx.scale.binding_steps:
            new = [binding(f"b{i:05d}", **arns) for i in range(len(manifests), total)]
            manifests += new
            points.append(_step(cluster, watches, bindings_path, new, total, pid, directory, ctx.scale.step_seconds))
    finally:
        sampler.stop()

    # --- Injected pods existing ---
    pod_count = ctx.scale.injected_pods
    names = {m["metadata"]["name"] for m in manifests}
    switch = WebhookSwitch(cluster, operator.webhook_configuration, namespace, "seed")
    switch.set(False)
    try:
        pods_report = cluster.create_all(f"/api/v1/namespaces/{namespace}/pods",
                                         injected_pods(namespace, manifests, pod_count), IN_FLIGHT, directory)  # fmt: skip
    finally:
        switch.set(True)
    pods_started = time.monotonic()

    def counted() -> int:
        return sum(watches.bindings.latest.get(name, 0) for name in names)

    watches.wait(lambda: counted() >= pod_count, PODS_TIMEOUT)
    pods_waited = time.monotonic() - pods_started
    rss_pods = rss_mib(pid)
    watches.stop()
    census = _census(ctx, pid)

    result = FigureResult(TITLE)
    for index, point in enumerate(points):
        result.rows += _point_rows(point, goals=index == GOAL_STEP)
    pods_note = (
        f"pods created in {pods_report['seconds']:.1f} s; statuses counted {counted()} of them "
        f"{pods_waited:.0f} s after the last create"
    )
    result.rows += [
        Row(TITLE, f"operator RSS, {pod_count} injected pods existing", rss_pods, None, "MiB",
            f"< {RSS_GOAL_MIB} MiB", rss_pods < RSS_GOAL_MIB, pods_note),
        Row(TITLE, "operator peak RSS during the figure", watches.peak, None, "MiB",
            note=f"sampled every {POLL_SECONDS:g} s; idle before the figure: {rss_idle:.0f} MiB"),
    ]  # fmt: skip
    result.findings.append(_curve_table(points, rss_idle))
    result.images[PLOT] = scaling_png([(p.bindings, p.rss_mib, p.seconds) for p in points], RSS_GOAL_MIB)
    result.findings.append(
        f"**Profile (py-spy on the operator while the bindings were reconciled).** "
        f"{sampler.summary(inclusive=PROFILED_FRAMES)}"
    )
    result.findings.append(
        "cert-manager here is hack/tools/cert-manager, sharing the machine's cores with the API server, etcd "
        "and the operator: how fast it issues bounds the time to Ready, not the operator (see when the "
        "Certificates all existed)."
    )
    result.findings.append(census)
    return result


def _step(cluster, watches: Watches, bindings_path: str, new: list[dict], total: int, pid: int, directory,
          timeout: float) -> Point:
    """Create `new` bindings and wait until every one reports Ready, `timeout` at most; the point at `total`."""
    point = Point(total, len(new), timeout=timeout)
    names = {m["metadata"]["name"] for m in new}
    certificates = {c.certificate_name(name): name for name in names}
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    point.created_seconds = cluster.create_all(bindings_path, new, IN_FLIGHT, directory)["seconds"]
    watches.wait(lambda: watches.bindings.count_ready(names) == len(names), timeout)
    point.cpu_seconds = cpu_seconds(pid) - cpu_before
    point.rss_mib = rss_mib(pid)
    ready = {name: at for name, at in watches.bindings.ready.items() if name in names}
    point.ready = len(ready)
    point.seconds = (max(ready.values()) if ready else time.monotonic()) - started
    seen = [at for name, at in watches.certificates.seen.items() if name in certificates]
    issued = {certificates[name]: at for name, at in watches.certificates.ready.items() if name in certificates}
    if len(seen) == len(names):
        point.certificates_at = max(seen) - started
    if len(issued) == len(names):
        point.issued_at = max(issued.values()) - started
    # A binding whose Ready was seen before its Certificate's (the same second, both events in flight) lags 0.
    point.lags = [max(0.0, ready[name] - issued[name]) for name in ready if name in issued]
    return point


def _point_rows(point: Point, *, goals: bool) -> list[Row]:
    n = point.bindings
    lag_p99 = percentile(point.lags, 0.99) if point.lags else None
    timing = (
        f"creates took {point.created_seconds:.1f} s; all Certificates existed at {_at(point.certificates_at)}, "
        f"all Ready (cert-manager) at {_at(point.issued_at)}; operator CPU {point.cpu_seconds:.0f} s "
        f"({point.cpu_seconds / max(1, point.added) * 1000:.0f} ms per binding added)"
    )
    rows = [
        Row(TITLE, f"{n} bindings: time to all Ready" if not point.timed_out
            else f"{n} bindings: Ready after {point.timeout:g} s", point.seconds if not point.timed_out else point.ready,
            None, "s" if not point.timed_out else "bindings", note=timing),
        Row(TITLE, f"{n} bindings: operator RSS", point.rss_mib, None, "MiB",
            f"< {RSS_GOAL_MIB} MiB" if goals else "", point.rss_mib < RSS_GOAL_MIB if goals else None),
        Row(TITLE, f"{n} bindings: Certificate Ready to binding Ready, p99", lag_p99, None, "s",
            f"< {LAG_GOAL_SECONDS:g} s" if goals else "",
            (lag_p99 is not None and lag_p99 < LAG_GOAL_SECONDS) if goals else None,
            f"p50 {_seconds(percentile(point.lags, 0.5) if point.lags else None)}, max "
            f"{_seconds(max(point.lags) if point.lags else None)}, over {len(point.lags)} bindings"),
    ]  # fmt: skip
    return rows


def _curve_table(points: list[Point], rss_idle: float) -> str:
    lines = [
        (f"**The scaling curve** (also {PLOT} next to this file; the operator's RSS idle before the figure: "
        f"{rss_idle:.0f} MiB)."),
        "",
        ("| bindings | operator RSS | time to all Ready | all Certificates existed at | operator CPU per binding "
        "| Ready lag p99 |"),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for point in points:
        lag = _seconds(percentile(point.lags, 0.99) if point.lags else None)
        lines.append(
            f"| {point.bindings:,} | {point.rss_mib:.0f} MiB | {point.seconds:.0f} s"
            f"{'' if not point.timed_out else f' ({point.ready} of {point.added} Ready)'} | {_at(point.certificates_at)} "
            f"| {point.cpu_seconds / max(1, point.added) * 1000:.0f} ms | {lag} |"
        )
    return "\n".join(lines)


def _at(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _census(ctx: Context, pid: int) -> str:
    """The operator's own count of what it holds (bench/operator_census.py), as one paragraph."""
    path = ctx.kube.census_file
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    try:
        # A tracemalloc snapshot of a large heap takes minutes on a busy machine.
        wait_for(path.exists, timeout=300 if ctx.kube.tracemalloc else 60, interval=0.2,
                 what="the operator's memory census")
    except TimedOut as error:
        return f"**Memory census.** not taken: {error}"
    data = json.loads(path.read_text())
    top = ", ".join(f"{name} {number:,} objects {size / 2**20:.1f} MiB" for name, number, size in data["top"])
    tasks = ", ".join(f"{name} {number:,}" for name, number in data["top_tasks"])
    traced = "; ".join(f"{where} {size / 2**20:.1f} MiB ({count:,} blocks)" for where, size, count in data["traced"])
    return (
        f"**Memory census of the operator (gc, at the end).** Live Python objects (shallow sizes, the strings "
        f"and bytes they hold included) add up to {data['bytes'] / 2**20:.0f} MiB of its {rss_mib(pid):.0f} MiB "
        f"RSS; largest types: {top}. asyncio tasks: {data['tasks']:,} ({tasks})."
        + (f" Traced by tracemalloc from the start: {data['traced_mib'][0]:.0f} MiB live, {data['traced_mib'][1]:.0f} MiB "
           f"at the peak; allocated where: {traced}." if traced else "")
    )
