"""Stopping the processes tests, the demo and the benchmarks start."""

from __future__ import annotations

import subprocess


def terminate(process: subprocess.Popen, *, grace: float = 10) -> int:
    """SIGTERM, then SIGKILL if it is still running after `grace` seconds; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode
