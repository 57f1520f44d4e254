"""Figure 3: the loopback credentials endpoint under load, ours against `aws_signing_helper serve`'s.

Both servers run on one core (CPU 0) holding one-hour credentials; the load generator
(bench/loadgen.py) runs as its own process on another core. Every request opens a new connection,
as an SDK fetching credentials does. The peer is asked the way an SDK asks an IMDSv2 endpoint, with a
session token taken beforehand; ours with the token from its token file. The servers are measured
in turn, alternating, for the same time each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .context import Context
from .loadgen import REQUEST_TIMEOUT_SECONDS
from .processes import OurServe, PeerServe
from .procstat import cpu_seconds, listen_backlog, listen_overflows, percentile
from .profiling import Sampler
from .report import FigureResult, Row

TITLE = "3 credentials endpoint"
P99_GOAL_MS = 2.0
CLIENT_COUNTS = (1, 50)


def _cpus() -> tuple[set[int] | None, int | None]:
    """(server CPUs, load generator CPU): one core each when the machine has two or more."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return {available[0]}, available[1]


def run_load(port: int, path: str, header: str, clients: int, seconds: float, cpu: int | None) -> dict:
    args = [sys.executable, "-m", "bench.loadgen", *(["--cpu", str(cpu)] if cpu is not None else []),
            "get", "--port", str(port), "--path", path, "--header", header,
            "--clients", str(clients), "--seconds", str(seconds)]  # fmt: skip
    completed = subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=seconds + 60, cwd=_repo()
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the load generator failed: {completed.stderr[-800:]}")
    outcome = json.loads(completed.stdout)
    if not outcome["latencies_ms"]:
        raise RuntimeError(f"no request succeeded: {outcome['first_error']}")
    return outcome


def _repo():
    from .paths import REPO

    return REPO


def measure(ctx: Context) -> FigureResult:
    directory = ctx.directory("endpoint")
    server_cpus, load_cpu = _cpus()
    ours = OurServe(ctx.aws, ctx.aws.normal.url, directory, cpus=server_cpus)
    peer = PeerServe(ctx.aws, ctx.helper, ctx.aws.normal.url, directory, cpus=server_cpus)
    outcomes: dict[tuple[str, int], tuple[dict, float, int]] = {}
    backlogs: dict[str, int | None] = {}
    profile = "not taken"
    try:
        ours_port = ours.wait_until_serving()
        peer.wait_until_serving()
        targets = {
            "ours": (ours, ours_port, "/v1/credentials", f"Authorization: {ours.token()}"),
            "peer": (peer, peer.port, peer.credentials_path, f"x-aws-ec2-metadata-token: {peer.imds_token}"),
        }
        backlogs = {name: listen_backlog(target[1]) for name, target in targets.items()}
        for clients in CLIENT_COUNTS:
            for name in ("ours", "peer") if clients == 1 else ("peer", "ours"):
                process, port, path, header = targets[name]
                before, overflows = cpu_seconds(process.pid), listen_overflows()
                sampler = (
                    Sampler(process.pid, directory / "ours.pyspy") if name == "ours" and clients > 1 else None
                )
                outcome = run_load(port, path, header, clients, ctx.scale.endpoint_seconds, load_cpu)
                if sampler is not None:
                    sampler.stop()
                    profile = sampler.summary(inclusive=("Thread.start", "rolesanywhere_sidecar"))
                outcomes[name, clients] = (
                    outcome,
                    cpu_seconds(process.pid) - before,
                    listen_overflows() - overflows,
                )
    finally:
        ours.stop()
        peer.stop()

    result = FigureResult(TITLE)
    for clients in CLIENT_COUNTS:
        (o, o_cpu, o_drops), (p, p_cpu, p_drops) = outcomes["ours", clients], outcomes["peer", clients]
        # A request that timed out took at least the timeout: it stays in the percentiles as that.
        o_lat, p_lat = (
            r["latencies_ms"] + [REQUEST_TIMEOUT_SECONDS * 1000.0] * r["timeouts"] for r in (o, p)
        )
        o_p99, p_p99 = percentile(o_lat, 0.99), percentile(p_lat, 0.99)
        result.rows += [
            Row(TITLE, f"{clients} client(s): p50 latency", percentile(o_lat, 0.5), percentile(p_lat, 0.5), "ms"),
            Row(TITLE, f"{clients} client(s): p99 latency", o_p99, p_p99, "ms", f"< {P99_GOAL_MS:g} ms",
                o_p99 < P99_GOAL_MS,
                f"max ours {max(o_lat):.1f} ms, peer {max(p_lat):.1f} ms; connections dropped by a full listen "
                f"queue (TcpExt ListenOverflows) during the run: ours {o_drops}, peer {p_drops}"),
            Row(TITLE, f"{clients} client(s): requests/s", o["in_window"] / o["window_seconds"],
                p["in_window"] / p["window_seconds"],
                note=f"answered within the load window; errors: ours {o['errors']} ({o['timeouts']} unanswered "
                     f"after {REQUEST_TIMEOUT_SECONDS} s), peer {p['errors']} ({p['timeouts']}); load generator CPU busy "
                     f"{o['cpu_seconds'] / o['seconds']:.0%} / {p['cpu_seconds'] / p['seconds']:.0%} of its core"),
            Row(TITLE, f"{clients} client(s): server CPU per request", o_cpu / len(o["latencies_ms"]) * 1e6,
                p_cpu / len(p["latencies_ms"]) * 1e6, "us"),
        ]  # fmt: skip
    pinned = "server on CPU 0, load generator on CPU 1" if server_cpus else "one CPU: no pinning possible"
    result.findings.append(
        f"Setup: {pinned}; {ctx.scale.endpoint_seconds:g} s of load per server and client count. "
        "When the load generator's core is near 100% busy, requests/s is the load generator's limit, "
        "not the server's; server CPU per request compares the servers' own cost either way."
    )
    result.findings.append(
        f"**Profile (py-spy on our serve, {max(CLIENT_COUNTS)} clients).** {profile}. The peer's CPU per "
        f"request is Go's net/http on the same core."
    )
    busiest = outcomes["ours", max(CLIENT_COUNTS)][0]
    stalled = sum(1 for latency in busiest["latencies_ms"] if latency >= 900) + busiest["timeouts"]
    result.findings.append(
        f"**Listen queue.** Listen backlog (`ss -lt` Send-Q): ours {backlogs.get('ours')}, peer "
        f"{backlogs.get('peer')}. With {max(CLIENT_COUNTS)} clients connecting at once, {stalled} of our requests "
        f"took 900 ms or more: a SYN dropped by a full listen queue is resent by the client's kernel after "
        f"1 s (socketserver's default `request_queue_size` is 5; Go listens with the kernel's somaxconn). "
        f"A larger `request_queue_size` on the sidecar's server would remove these stalls."
        if stalled
        else f"**Listen queue.** Listen backlog (`ss -lt` Send-Q): ours {backlogs.get('ours')}, peer "
        f"{backlogs.get('peer')}; no request of ours stalled for a resent SYN in this run."
    )
    return result
