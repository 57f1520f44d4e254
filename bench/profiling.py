"""Where a Python process spends its CPU while a figure loads it: py-spy, when it is installed.

py-spy is optional (`pip install py-spy`); without it the findings say so and nothing else changes.
It samples the running process from outside (only threads that are not idle), so the profile is of
the very process measured, at a small cost to it (`--nonblocking`: the process is never paused).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from .paths import REPO, VENV_BIN

SAMPLES_PER_SECOND = 200


def py_spy() -> str | None:
    candidate = VENV_BIN / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Sampler:
    """Samples `pid` from construction until `stop()`; `summary()` names where the time went."""

    def __init__(self, pid: int, output: Path, *, rate: int = SAMPLES_PER_SECOND) -> None:
        self.output = output
        self.process = None
        executable = py_spy()
        if executable is None:
            return
        self.process = subprocess.Popen(
            [executable, "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
             "--rate", str(rate), "--nonblocking", "--full-filenames"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def summary(self, top: int = 6, inclusive: tuple[str, ...] = ()) -> str:
        """One sentence: the busiest functions (own time), the busiest packages, and the share of samples
        inside each of `inclusive` (function names like "Thread.start" or packages like "stdlib logging")."""
        if self.process is None:
            return "(py-spy is not installed: `pip install py-spy` into .venv for a CPU profile here)"
        if not self.output.exists():
            error = self.process.stderr.read().decode(errors="replace")[-300:] if self.process.stderr else ""
            return f"(py-spy wrote no profile: {error.strip()})"
        own: Counter[str] = Counter()
        packages: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            leaf = stack.split(";")[-1]  # "function (path:line)"
            function, _, where = leaf.partition(" (")
            path = where.rsplit(":", 1)[0]
            own[f"{function} ({_short(path)})"] += int(count)
            packages[_package(path)] += int(count)
            frames = [frame.partition(" (") for frame in stack.split(";")]
            names = {name for name, _, _ in frames} | {
                _package(rest.rsplit(":", 1)[0]) for _, _, rest in frames
            }
            for wanted in inclusive:
                if wanted in names:
                    inside[wanted] += int(count)
        total = sum(own.values())
        if not total:
            return "(py-spy took no samples)"
        busiest = ", ".join(f"{name} {n / total:.0%}" for name, n in own.most_common(top))
        shares = ", ".join(f"{name} {n / total:.0%}" for name, n in packages.most_common(top))
        within = "".join(f"; inside {name}: {inside[name] / total:.0%}" for name in inclusive)
        return f"{total} samples; own time by package: {shares}; busiest functions: {busiest}{within}"


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", f"{REPO}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return Path(path).name


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/lib/python3" in path:
        return "stdlib " + path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    for ours in ("rolesanywhere_operator", "rolesanywhere_sidecar", "rolesanywhere_protocol"):
        if ours in path:
            return ours
    return Path(path).name
