"""Where things are: the repository, and the import roots the benchmarks share with the tests.

The moto server, the emulator and the operator harness live in tests/support and hack/localcluster;
the benchmarks import them from there (as the tests do) rather than keeping copies.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
#: Where the benchmark keeps its cluster, certificates and logs; wiped at each start.
WORK_DIR = REPO / ".run" / "bench"
VENV_BIN = Path(sys.executable).parent
SIDECAR = str(VENV_BIN / "rolesanywhere-sidecar")


def add_import_roots() -> None:
    """Make `support` (tests/support) and `localcluster` (hack/) importable, as tests/conftest.py does."""
    for root in (REPO / "tests", REPO / "hack"):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
