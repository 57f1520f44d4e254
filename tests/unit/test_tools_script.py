"""hack/tools.sh fails with one clear line when the toolchain or the module proxy is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_tools(tmp_path: Path, **env_overrides) -> subprocess.CompletedProcess:
    env = {"HOME": str(tmp_path), "ROLESANYWHERE_CACHE": str(tmp_path / "cache"), "PATH": os.environ["PATH"]}
    env.update(env_overrides)
    return subprocess.run([str(REPO_ROOT / "hack/tools.sh"), "bindir"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_missing_go_toolchain_is_one_clear_line(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "sha256sum", "cut", "cat", "mkdir", "awk", "head", "sed", "dirname"):
        os.symlink(shutil.which(tool), bare / tool)
    result = run_tools(tmp_path, PATH=str(bare))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("hack/tools.sh: the Go toolchain is missing"), result.stderr
    assert "Traceback" not in result.stderr and len(lines) <= 2


def test_unreachable_module_proxy_is_one_clear_line(tmp_path):
    result = run_tools(
        tmp_path,
        GOPROXY="http://127.0.0.1:9/",  # discard port: nothing answers
        GOMODCACHE=str(tmp_path / "modcache"),
        GOCACHE=str(tmp_path / "gocache"),
        GOPATH=str(tmp_path / "gopath"),
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hack/tools.sh: cannot download the Go modules for kubernetes from the module proxy"), (
        result.stderr
    )
    assert "127.0.0.1:9" in last
