"""What a process costs, read from /proc, and the statistics the figures use."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"/proc/{pid}/status has no {key}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time `pid` has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime, stime


def live_threads_cpu_seconds(pid: int) -> float:
    """CPU time of the threads of `pid` alive now, in nanosecond resolution (/proc/PID/task/*/schedstat).

    Finer than cpu_seconds' clock ticks, for short idle windows; threads that exited are not counted.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9


def context_switches(pid: int) -> int:
    """Times the live threads of `pid` gave up or lost the CPU so far: about how often they woke up."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


def wait_until_quiet(
    pid: int, *, busy_below: float = 0.05, window: float = 0.5, timeout: float = 60
) -> float:
    """Wait until `pid` uses less than `busy_below` of a core over `window` seconds; the seconds waited.

    Gives up quietly after `timeout`: a process that never settles is part of what is measured.
    """
    import time

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)  # the measuring window
        if cpu_seconds(pid) - before < busy_below * window:
            break
    return time.monotonic() - started


def memory_breakdown_mib(pid: int) -> dict[str, float]:
    """RSS split into anonymous memory (heap, stacks) and file-backed pages (binary, shared libraries)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            values[parts[0].rstrip(":")] = int(parts[1]) / 1024
    anonymous = values.get("Anonymous", 0.0)
    return {"rss": values.get("Rss", 0.0), "anonymous": anonymous, "file": values.get("Rss", 0.0) - anonymous}


def mapped_files_mib(pid: int, top: int = 5) -> list[tuple[str, float]]:
    """The file-backed mappings holding the most resident memory (name, MiB), largest first."""
    sizes: dict[str, float] = {}
    current = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
            current = parts[5] if len(parts) >= 6 and parts[5].startswith("/") else None
        elif current and parts[:1] == ["Rss:"]:
            sizes[current] = sizes.get(current, 0.0) + int(parts[1]) / 1024
    ranked = sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:top]
    return [(Path(name).name, size) for name, size in ranked]


def listen_overflows() -> int:
    """Connections this network namespace dropped because a listen queue was full (TcpExt ListenOverflows)."""
    lines = [
        line.split()
        for line in Path("/proc/net/netstat").read_text().splitlines()
        if line.startswith("TcpExt:")
    ]
    names, values = lines[0], lines[1]
    return int(values[names.index("ListenOverflows")])


def listen_backlog(port: int) -> int | None:
    """The listen backlog of the socket listening on 127.0.0.1:`port` (ss shows it as Send-Q)."""
    import subprocess

    output = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            return int(parts[2])
    return None


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 = median, 0.99 = p99) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
