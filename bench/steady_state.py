"""Figure 2: steady memory after refresh cycles, and CPU seconds per hour of serving.

Refresh cycles use the emulator vending SHORT_LIFETIME-second sessions. Ours refreshes on its own
schedule (about half the lifetime). `aws_signing_helper serve` refreshes only when a client asks and
its credentials have less than ten minutes left (RefreshTime in its serve.go, counted twice), so each
of our GETs makes it refresh: the peer gets the same number of cycles, driven by requests.

CPU per hour = idle CPU rate (a measured window of a `serve` holding one-hour credentials) x 3600
+ CPU per refresh (the refresh window's CPU / cycles, idle time within included) x refreshes per hour
with one-hour sessions: ours 2 (refresh at half the lifetime), the peer's 1.2 (when a client asks with
less than ten minutes left, i.e. every 50 minutes).
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from rolesanywhere_devkit.processes import wait_for

from .context import Context, run_timed
from .processes import OurServe, PeerServe
from .procstat import (
    context_switches,
    cpu_seconds,
    live_threads_cpu_seconds,
    mapped_files_mib,
    memory_breakdown_mib,
    rss_mib,
)
from .report import FigureResult, Row

TITLE = "2 steady state of one sidecar"
OURS_REFRESHES_PER_HOUR = 2.0
PEER_REFRESHES_PER_HOUR = 60 / 50


def measure(ctx: Context) -> FigureResult:
    directory = ctx.directory("steady-state")
    cycles = ctx.scale.refresh_cycles
    ours = OurServe(ctx.aws, ctx.aws.short_lived.url, directory / "ours-short")
    peer = PeerServe(ctx.aws, ctx.helper, ctx.aws.short_lived.url, directory / "peer-short")
    started = [ours, peer]
    try:
        ours.wait_until_serving()
        peer.wait_until_serving()
        ours_rss_start, peer_rss_start = rss_mib(ours.pid), rss_mib(peer.pid)

        ours_cpu = cpu_seconds(ours.pid)
        wait_for(lambda: ours.refreshes() > cycles, timeout=cycles * 3 + 30, interval=0.05,
                 what=f"{cycles} refreshes of our serve")  # fmt: skip
        ours_per_refresh = (cpu_seconds(ours.pid) - ours_cpu) / cycles
        ours_rss = rss_mib(ours.pid)
        ours_breakdown = memory_breakdown_mib(ours.pid)
        ours_files = mapped_files_mib(ours.pid)

        peer_cpu = cpu_seconds(peer.pid)
        keys = {peer.get_credentials()["AccessKeyId"] for _ in range(cycles)}
        if len(keys) < cycles:
            raise RuntimeError(f"aws_signing_helper serve refreshed {len(keys)} times for {cycles} requests")
        peer_per_refresh = (cpu_seconds(peer.pid) - peer_cpu) / cycles
        peer_rss = rss_mib(peer.pid)
        peer_breakdown = memory_breakdown_mib(peer.pid)
    finally:
        for process in started:
            process.stop()

    (ours_idle, peer_idle), (ours_wakeups, peer_wakeups) = _idle_rates(ctx, directory)
    ours_hour = ours_idle * 3600 + ours_per_refresh * OURS_REFRESHES_PER_HOUR
    peer_hour = peer_idle * 3600 + peer_per_refresh * PEER_REFRESHES_PER_HOUR

    result = FigureResult(TITLE)
    result.rows += [
        Row(TITLE, f"RSS after {cycles} refresh cycles", ours_rss, peer_rss, "MiB", "<= peer's",
            ours_rss <= peer_rss,
            f"at first credentials: ours {ours_rss_start:.1f} MiB, peer {peer_rss_start:.1f} MiB"),
        Row(TITLE, "CPU per refresh", ours_per_refresh * 1000, peer_per_refresh * 1000, "ms",
            note=f"CPU time over {cycles} cycles / {cycles}"),
        Row(TITLE, "CPU idle, per hour", ours_idle * 3600, peer_idle * 3600, "s",
            note=f"{ctx.scale.idle_window_seconds:g} s window, extrapolated; wake-ups (context switches) per "
                 f"second: ours {ours_wakeups:.1f}, peer {peer_wakeups:.1f}"),
        Row(TITLE, "CPU per hour of serving", ours_hour, peer_hour, "s",
            note=f"idle x 3600 + per refresh x {OURS_REFRESHES_PER_HOUR:g} (ours) / {PEER_REFRESHES_PER_HOUR:g} (peer)"),
    ]  # fmt: skip
    result.findings.append(
        f"**Memory (smaps).** Ours: RSS {ours_breakdown['rss']:.1f} MiB = {ours_breakdown['anonymous']:.1f} MiB "
        f"anonymous (Python objects, heap, thread stacks) + {ours_breakdown['file']:.1f} MiB file-backed "
        f"(largest: {', '.join(f'{name} {size:.1f}' for name, size in ours_files)}). Peer: RSS "
        f"{peer_breakdown['rss']:.1f} MiB = {peer_breakdown['anonymous']:.1f} MiB anonymous + "
        f"{peer_breakdown['file']:.1f} MiB of its static binary. File-backed pages of shared libraries are "
        f"shared with other processes on the node that map the same files; anonymous memory is not."
    )
    result.findings.append(_tracemalloc_profile(ctx))
    return result


def _idle_rates(ctx: Context, directory) -> tuple[tuple[float, float], tuple[float, float]]:
    """CPU seconds per second, and wake-ups per second, of both `serve`s holding one-hour credentials
    and answering nothing: ((ours, peer) CPU, (ours, peer) wake-ups)."""
    ours = OurServe(ctx.aws, ctx.aws.normal.url, directory / "ours-idle")
    peer = PeerServe(ctx.aws, ctx.helper, ctx.aws.normal.url, directory / "peer-idle")
    try:
        ours.wait_until_serving()
        peer.wait_until_serving()
        time.sleep(0.5)  # let start-up work (the first log lines, the listener thread) finish
        cpu, switches = live_threads_cpu_seconds, context_switches
        before = (cpu(ours.pid), cpu(peer.pid), switches(ours.pid), switches(peer.pid), time.monotonic())
        time.sleep(ctx.scale.idle_window_seconds)  # the measured window itself, not a wait for a condition
        elapsed = time.monotonic() - before[4]
        return (
            ((cpu(ours.pid) - before[0]) / elapsed, (cpu(peer.pid) - before[1]) / elapsed),
            ((switches(ours.pid) - before[2]) / elapsed, (switches(peer.pid) - before[3]) / elapsed),
        )
    finally:
        ours.stop()
        peer.stop()


_TRACE = """
import collections, json, sys, tracemalloc
tracemalloc.start()
from rolesanywhere_sidecar.cli import main
main(sys.argv[1:])
by = collections.Counter()
for stat in tracemalloc.take_snapshot().statistics("filename"):
    name = stat.traceback[0].filename
    if "site-packages/" in name:
        group = name.split("site-packages/", 1)[1].split("/", 1)[0]
    elif "/lib/python3" in name:
        group = "stdlib " + name.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    elif name.startswith("<frozen"):
        group = "code objects of imported modules"
    elif "rolesanywhere_sidecar" in name:
        group = "rolesanywhere_sidecar"
    elif "rolesanywhere_protocol" in name:
        group = "rolesanywhere_protocol"
    else:
        group = "other"
    by[group] += stat.size
print(json.dumps({"total": sum(by.values()), "top": by.most_common(6)}))
"""


def _tracemalloc_profile(ctx: Context) -> str:
    import json

    out = ctx.directory("steady-state") / "traced"
    args = [sys.executable, "-c", _TRACE,
            *ctx.aws.ours("serve", ctx.aws.normal.url, "--once", "--output-dir", str(out))[1:]]  # fmt: skip
    _, completed = run_timed(args, ctx.aws.environment())
    traced = json.loads(completed.stdout.strip().splitlines()[-1])
    top = Counter(dict(traced["top"]))
    listed = ", ".join(f"{name} {size / 2**20:.1f}" for name, size in top.most_common(6))
    return (
        f"**Profile (tracemalloc, `serve --once` in one process).** Python objects alive after the first "
        f"credentials: {traced['total'] / 2**20:.1f} MiB, by where they were allocated (MiB): {listed}."
    )
