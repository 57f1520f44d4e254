"""One table of figures: our value, the peer's, their ratio, the goal and where we stand; plus findings."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Row:
    figure: str  # e.g. "1 cold start"
    metric: str  # what was measured, e.g. "credential-process, median"
    ours: float | None
    peer: float | None = None
    unit: str = ""
    goal: str = ""  # the goal for this row, as text
    met: bool | None = None  # None: the row has no goal
    note: str = ""  # how it was measured, in a few words

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.peer:
            return None
        return self.ours / self.peer


@dataclass
class FigureResult:
    title: str
    rows: list[Row] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # profiles and explanations, one paragraph each
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG, written next to the table
    error: str = ""  # set when the figure could not be measured


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _ratio(row: Row) -> str:
    return "-" if row.ratio is None else f"{row.ratio:.2f}x"


def _standing(row: Row) -> str:
    if row.met is None:
        return ""
    return f"{'met' if row.met else 'MISSED'} ({row.goal})"


def table_lines(results: list[FigureResult]) -> list[list[str]]:
    lines = []
    for result in results:
        if result.error:
            lines.append([result.title, "not measured", "-", "-", "-", result.error])
            continue
        for row in result.rows:
            lines.append(
                [row.figure, row.metric, _number(row.ours, row.unit), _number(row.peer, row.unit),
                 _ratio(row), _standing(row)]
            )  # fmt: skip
    return lines


HEADER = ["figure", "metric", "ours", "peer", "ours/peer", "goal"]


def render_text(results: list[FigureResult]) -> str:
    lines = [HEADER, *table_lines(results)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(results: list[FigureResult], machine: dict[str, str], settings: dict[str, str]) -> str:
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/); every figure comes from the same run on the same machine, so",
        "the ratios hold where the absolute values would not. The peer is AWS's `aws_signing_helper`",
        "unless the figure's title names another.",
        "",
        "| machine | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        "",
        "| run | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in settings.items()],
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" for _ in HEADER) + " |",
        *[
            "| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |"
            for line in table_lines(results)
        ],
        "",
        "## How each figure was measured, and findings",
        "",
    ]
    for result in results:
        out.append(f"### {result.title}")
        out.append("")
        if result.error:
            out += [f"Not measured: {result.error}", ""]
        for row in result.rows:
            if row.note:
                out.append(f"- {row.metric}: {row.note}")
        if any(row.note for row in result.rows):
            out.append("")
        for finding in result.findings:
            out += [finding, ""]
    return "\n".join(out).rstrip() + "\n"


def machine_description(helper: Path) -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    version = subprocess.run(
        [str(helper), "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cores": f"{len(os.sched_getaffinity(0))} ({model})" if model else str(len(os.sched_getaffinity(0))),
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aws_signing_helper": version or "unknown",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
