"""`python -m bench --quick` runs every figure end to end and writes its table (and figure 6's plot).

Only that: benchmark figures are printed, never asserted (a timing test on a shared machine is a
flaky test). The test session's cluster is handed over, so no second control plane starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_bench_measures_every_figure_and_writes_the_table(cluster, tmp_path):
    results = tmp_path / "RESULTS.md"

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(results),
         "--work-dir", str(tmp_path / "work"), "--kubeconfig", str(cluster.kubeconfig)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr[-3000:]
    table = results.read_text()
    assert "| figure | metric | ours |" in table
    for figure in range(1, 9):
        rows = [line for line in table.splitlines() if line.startswith(f"| {figure} ")]
        assert rows, f"figure {figure} has no row in:\n{table}"
        assert not any("not measured" in row for row in rows), rows
    assert "cores" in table and "memory" in table
    assert "| bindings | operator RSS |" in table, "figure 6's scaling curve as a table"
    assert (tmp_path / "operator-scaling.png").read_bytes().startswith(b"\x89PNG"), "and as a plot next to it"
