"""What every figure is handed: the scale of the run, the AWS stand-ins, the peer binary, a work folder."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .cluster import OperatorSession
from .services import AwsStandIns


@dataclass(frozen=True)
class Scale:
    """How much each figure does; `FULL` is what the issue asks for, `QUICK` only proves the run works."""

    cold_start_runs: int  # runs of each of the four commands (figure 1)
    refresh_cycles: int  # refreshes before the steady RSS is read (figure 2)
    idle_window_seconds: float  # CPU window of an idle `serve` (figure 2)
    endpoint_seconds: float  # load per client count and server (figure 3)
    admission_pods: int  # pod creations per in-flight setting (figure 4)
    pod_start_runs: int  # sidecar starts (figure 5)
    binding_steps: tuple[int, ...]  # bindings existing at each point of the scaling curve (figure 6)
    step_seconds: float  # the longest figure 6 waits for one step's bindings to be Ready
    injected_pods: int  # injected pods existing while the operator's RSS is read (figure 6)
    mass_start: int  # sidecars starting together (figure 7)
    issuance_pods: int  # per-pod identity: pods getting their own certificates together (figure 8)


FULL = Scale(
    cold_start_runs=20, refresh_cycles=10, idle_window_seconds=10, endpoint_seconds=3, admission_pods=500,
    pod_start_runs=10, binding_steps=(100, 1000, 3000), step_seconds=90, injected_pods=5000, mass_start=500,
    issuance_pods=100,
)  # fmt: skip
QUICK = Scale(
    cold_start_runs=3, refresh_cycles=3, idle_window_seconds=2, endpoint_seconds=0.5, admission_pods=30,
    pod_start_runs=2, binding_steps=(5, 20, 40), step_seconds=20, injected_pods=60, mass_start=500,
    issuance_pods=10,
)  # fmt: skip


@dataclass
class Context:
    scale: Scale
    quick: bool
    work: Path
    aws: AwsStandIns
    helper: Path  # aws_signing_helper
    bin_dir: Path  # the pinned binaries (kubectl, kube-apiserver, ...)
    kube: OperatorSession  # the cluster and the operator, started on first use (figures 4, 6 and 8)

    def directory(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def run_timed(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command to its end; (seconds from spawn to exit, result). A failure raises with its output."""
    started = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} {args[1]} exited {result.returncode}: {result.stderr[-600:]}"
        )
    return elapsed, result
