"""The process primitives every dev tool shares (the local cluster, the harnesses, the demo, the benchmarks):
a free port, a poller, and the one way to stop a process.

It imports nothing of the kit, so every other module (localcluster included) may import it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: Seconds a process is given to exit after SIGKILL before `stop` gives up on it.
KILL_WAIT = 10.0


class TimedOut(RuntimeError):
    """`wait_for`'s condition did not hold in time; the message names what was awaited."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `condition` until it returns a truthy value, and return it; raise TimedOut naming `what`
    after `timeout` seconds. An exception from `condition` (a process that exited) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie does not); a child of ours that has exited is reaped on the way."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop(*processes: subprocess.Popen | int, grace: float = 10, group: bool = False) -> None:
    """Stop processes: SIGTERM each, then SIGKILL whatever still runs after `grace` seconds (one wait for all).

    A process is a Popen we started or a pid (one started by an earlier command, e.g. `make cluster-up`);
    with `group`, the signals go to each one's process group (a pid that leads a session of its own).
    """

    def running(process: subprocess.Popen | int) -> bool:
        return process.poll() is None if isinstance(process, subprocess.Popen) else alive(process)

    def send(process: subprocess.Popen | int, signum: int) -> None:
        pid = process.pid if isinstance(process, subprocess.Popen) else process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            (os.killpg if group else os.kill)(pid, signum)

    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)):
        remaining = [process for process in processes if running(process)]
        if not remaining:
            return
        for process in remaining:
            send(process, signum)
        deadline = time.monotonic() + wait
        while any(running(process) for process in remaining) and time.monotonic() < deadline:
            time.sleep(0.05)


def children_in_our_group() -> list[int]:
    """Our running children that share our process group: e.g. one started just as Ctrl-C came, before
    its starter registered its stop. Children in sessions of their own (the control plane's) are not."""
    ours, group = os.getpid(), os.getpgrp()
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, parent, process_group = fields[0], int(fields[1]), int(fields[2])
        if parent == ours and process_group == group and state != "Z":
            children.append(int(stat.parent.name))
    return children


def terminate(process: subprocess.Popen, *, grace: float = 10) -> int | None:
    """`stop` one child process; its exit code (None if even SIGKILL did not end it)."""
    stop(process, grace=grace)
    return process.poll()
