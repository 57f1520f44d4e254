"""Figure 1: cold start to first credentials, process start to exit, against the local emulator.

Four commands, run in turn (rotating which goes first) so that a slow moment of the machine hits all
of them alike: our `credential-process` and `serve --once` (writes the files, then exits), and
`aws_signing_helper credential-process` and `update --once` (writes ~/.aws/credentials, then exits).
"""

from __future__ import annotations

import sys
from collections import defaultdict

from .context import Context, run_timed
from .procstat import median
from .report import FigureResult, Row

TITLE = "1 cold start to first credentials"


def measure(ctx: Context) -> FigureResult:
    aws, endpoint = ctx.aws, ctx.aws.normal.url
    out = ctx.directory("cold-start")
    env = aws.environment(AWS_SHARED_CREDENTIALS_FILE=str(out / "peer-credentials"))
    commands = {
        "ours credential-process": aws.ours("credential-process", endpoint),
        "peer credential-process": aws.peer(ctx.helper, "credential-process", endpoint),
        "ours serve --once": aws.ours("serve", endpoint, "--once", "--output-dir", str(out / "ours")),
        "peer update --once": aws.peer(ctx.helper, "update", endpoint, "--once"),
    }
    names = list(commands)
    seconds: dict[str, list[float]] = defaultdict(list)
    for run in range(ctx.scale.cold_start_runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            elapsed, _ = run_timed(commands[name], env)
            seconds[name].append(elapsed * 1000)

    result = FigureResult(TITLE)
    runs = ctx.scale.cold_start_runs
    for label, ours, peer in [
        ("credential-process", "ours credential-process", "peer credential-process"),
        ("serve --once vs update --once", "ours serve --once", "peer update --once"),
    ]:
        for statistic, pick in (("median", median), ("max", max)):
            result.rows.append(
                Row(TITLE, f"{label}, {statistic} of {runs}", pick(seconds[ours]), pick(seconds[peer]), "ms",
                    note="" if statistic == "max" else "spawn to exit, one CreateSession through emulator and moto")
            )  # fmt: skip
    result.findings.append(_import_profile(ctx, env, median(seconds["peer credential-process"])))
    return result


def _import_profile(ctx: Context, env: dict[str, str], peer_ms: float) -> str:
    """Where our credential-process's start-up goes: the bare interpreter, imports, the rest."""
    floor = median([run_timed([sys.executable, "-c", "pass"], env)[0] * 1000 for _ in range(5)])
    script = "import sys; from rolesanywhere_sidecar.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-X", "importtime", "-c", script,
            *ctx.aws.ours("credential-process", ctx.aws.normal.url)[1:]]  # fmt: skip
    _, completed = run_timed(args, env)
    by_package: dict[str, float] = defaultdict(float)
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|", 2)
        by_package[name.strip().split(".")[0]] += int(own) / 1000
    total = sum(by_package.values())
    top = sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:8]
    listed = ", ".join(f"{name} {ms:.0f}" for name, ms in top)
    return (
        f"**Profile (`python -X importtime`, one credential-process run).** The bare interpreter starts in "
        f"{floor:.0f} ms (median of 5 `python -c pass`). Imports take {total:.0f} ms; by package, each "
        f"module's own import time summed (ms): {listed}. The peer's whole run, CreateSession round trip "
        f"included, takes {peer_ms:.0f} ms."
    )
