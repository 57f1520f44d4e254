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
                          timeout=120, check=False)


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


def copy_of_venv_script(tmp_path: Path) -> Path:
    (tmp_path / "hack").mkdir()
    shutil.copy(REPO_ROOT / "hack/venv.sh", tmp_path / "hack/venv.sh")
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "hack/venv.sh"


def test_missing_python_is_one_clear_line(tmp_path):
    script = copy_of_venv_script(tmp_path)
    result = subprocess.run([str(script)], env={"PATH": os.environ["PATH"], "PYTHON": "python3.99"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "hack/venv.sh: python3.99 is missing: install Python >= 3.11"


def test_unreachable_package_index_is_one_clear_line(tmp_path):
    script = copy_of_venv_script(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}
    result = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hack/venv.sh: cannot install the Python packages from the package index"), result.stderr
    assert "Traceback" not in result.stderr
