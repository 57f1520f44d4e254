"""Running `make demo` (hack/demo.py) from a test: in a process group of its own, its output collected,
optionally interrupted once a line is printed, and whatever of its group outlived it listed."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rolesanywhere_devkit import REPO

DEMO = REPO / "hack" / "demo.py"
#: The exit status of an interrupted demo.
INTERRUPTED = 130


class DemoTimedOut(AssertionError):
    """The demo did not finish in time (it was killed); the message holds its output."""


@dataclass
class DemoRun:
    returncode: int
    output: str
    leftovers: list[str]  # processes of the demo's process group still running after it exited


def run_demo(root: Path, *args: str, timeout: float,
             interrupt: tuple[str, signal.Signals, bool] | None = None) -> DemoRun:
    """Run the demo with `--root root`; with `interrupt` (line, signal, to the whole group), send the
    signal once a line containing `line` is printed."""
    process = subprocess.Popen(
        [sys.executable, str(DEMO), "--root", str(root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while (line := lines.get(timeout=max(deadline - time.monotonic(), 0.1))) is not None:
            output.append(line)
            if interrupt and interrupt[0] in line:
                _, signum, whole_group = interrupt
                (os.killpg if whole_group else os.kill)(process.pid, signum)
                interrupt = None
        process.wait(timeout=60)
    except (queue.Empty, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        raise DemoTimedOut(f"the demo did not finish within {timeout:.0f}s; its output:\n{''.join(output)}") from None
    return DemoRun(process.returncode, "".join(output), still_running_in_group(process.pid))


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def still_running_in_group(group: int, grace: float = 5) -> list[str]:
    """Command lines of live processes in process group `group`, once `grace` seconds found no end to them."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _, process_group = stat.read_text().rsplit(")", 1)[1].split()[:3]
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError):
                continue
            if int(process_group) == group and state != "Z":
                found.append(cmdline)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
