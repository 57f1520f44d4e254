"""Where things are: the repository, the bench's work folder and the executables it runs.

The moto server, the emulator and the operator harness come from the dev kit (rolesanywhere_devkit,
installed by hack/venv.sh), the same the tests use, rather than copies.
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

