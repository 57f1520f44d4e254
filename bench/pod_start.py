"""Figure 5: pod start delay, what an injected pod's app containers wait for.

The kubelet starts the app containers once the native sidecar's startupProbe (an httpGet of /readyz on
its health port) passes. Its probe worker ticks every periodSeconds (read from the operator's own
sidecar builder) from when it was created, which is not when the container started, so the first probe
comes at a random phase within the first period. Here the sidecar (`serve`, one-hour credentials from
the emulator) is started and probed on such a schedule (phase drawn from a seeded generator), with the
probe's own timeout, as the kubelet does; the delay is from the sidecar's spawn to the end of the first
passing probe. Alongside: the
time until the credentials file exists (polled every POLL_SECONDS), and the same for
`aws_signing_helper serve` (until its endpoint listens, which it does once it holds credentials).
"""

from __future__ import annotations

import random
import threading
import time

from rolesanywhere_sidecar.contract import READYZ_PATH

from .context import Context
from .processes import OurServe, PeerServe
from .procstat import median
from .report import FigureResult, Row

TITLE = "5 pod start delay"
POLL_SECONDS = 0.005
GOAL_SECONDS = 1.0


def startup_probe(ctx: Context) -> dict:
    """The startupProbe the operator's own builder gives the native sidecar."""
    from rolesanywhere_devkit.operator import binding
    from rolesanywhere_operator.injection import build_sidecar
    from rolesanywhere_operator.settings import Settings
    from rolesanywhere_operator.spec import parse_binding

    w = ctx.aws.workload
    manifest = binding("bench", trust_anchor_arn=w.trust_anchor_arn, profile_arn=w.profile_arn,
                       role_arn=w.role_arn)  # fmt: skip
    manifest["metadata"].update(namespace="bench", uid="00000000-0000-0000-0000-000000000000")
    sidecar = build_sidecar(parse_binding(manifest), Settings())
    return sidecar["startupProbe"]


def _probe(port: int, path: str, timeout: float) -> bool:
    """One httpGet probe as the kubelet makes it: passing on a 2xx or 3xx answer within its timeout."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return 200 <= connection.getresponse().status < 400
    except OSError:  # not listening yet, reset, timed out: a failed probe
        return False
    finally:
        connection.close()


def _poll(condition, started: float, found: dict, key: str, stop: threading.Event) -> None:
    while not stop.is_set():
        if condition():
            found[key] = time.perf_counter() - started
            return
        time.sleep(POLL_SECONDS)


def _ours_once(ctx: Context, run: int, period: float, phase: float, timeout: float) -> tuple[float, float, list[float]]:
    """(seconds to the credentials file, seconds to the passing probe, each probe's run time)."""
    directory = ctx.directory(f"pod-start/ours-{run}")
    started = time.perf_counter()
    serve = OurServe(ctx.aws, ctx.aws.normal.url, directory)
    found: dict[str, float] = {}
    stop = threading.Event()
    target = serve.output_dir / "credentials.json"
    watcher = threading.Thread(target=_poll, args=(target.exists, started, found, "file", stop), daemon=True)
    watcher.start()
    durations = []
    try:
        for tick in range(int(60 / period)):
            delay = started + phase + tick * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the kubelet's probe schedule, not a wait for a condition
            probe_started = time.perf_counter()
            passed = _probe(serve.health_port, READYZ_PATH, timeout)
            durations.append(time.perf_counter() - probe_started)
            serve.assert_running()
            if passed:
                watcher.join(timeout=5)
                return found["file"], time.perf_counter() - started, durations
        raise RuntimeError("the startup probe did not pass within 60 s")
    finally:
        stop.set()
        serve.stop()


def _peer_once(ctx: Context, run: int) -> float:
    directory = ctx.directory(f"pod-start/peer-{run}")
    started = time.perf_counter()
    peer = PeerServe(ctx.aws, ctx.helper, ctx.aws.normal.url, directory)
    try:
        found: dict[str, float] = {}
        _poll(lambda: "Local server started" in peer.log(), started, found, "ready", threading.Event())
        return found["ready"]
    finally:
        peer.stop()


def measure(ctx: Context) -> FigureResult:
    probe = startup_probe(ctx)
    period, timeout = float(probe["periodSeconds"]), float(probe["timeoutSeconds"])
    assert probe["httpGet"]["path"] == READYZ_PATH, "figure 5 measures the probe the operator injects"
    files, probes, checks, peers = [], [], [], []
    rng = random.Random(7)
    for run in range(ctx.scale.pod_start_runs):
        file_seconds, probe_seconds, durations = _ours_once(ctx, run, period, rng.uniform(0, period), timeout)
        files.append(file_seconds)
        probes.append(probe_seconds)
        checks += durations
        peers.append(_peer_once(ctx, run))
    runs = ctx.scale.pod_start_runs
    result = FigureResult(TITLE)
    result.rows += [
        Row(TITLE, f"start to credentials held, median of {runs}", median(files) * 1000, median(peers) * 1000, "ms",
            note="ours: credentials.json written; peer: its endpoint listening (after its first CreateSession)"),
        Row(TITLE, f"start to startupProbe passing, median of {runs}", median(probes), None, "s",
            f"< {GOAL_SECONDS:g} s", median(probes) < GOAL_SECONDS,
            f"probe every {period:g} s (the operator's startupProbe); max {max(probes):.2f} s"),
        Row(TITLE, "one probe (httpGet /readyz on the health port)", median(checks) * 1000, None, "ms",
            note=f"median of {len(checks)} probes; no process is started"),
    ]  # fmt: skip
    result.findings.append(
        f"**Where the delay goes.** The credentials are on disk {median(files):.2f} s after the sidecar starts "
        f"(median); then the pod waits for the next probe tick (half a period, {period / 2:g} s, on average) "
        f"and one probe ({median(checks) * 1000:.1f} ms, an HTTP request to the running sidecar)."
    )
    return result
