"""The product and the dev kit stay apart: the product's wheel (what the image installs) carries no emulator,
the product imports nothing of the kit, and nothing edits the import path to find a module."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rolesanywhere_devkit import REPO

#: The dev kit's top-level packages (hack/pyproject.toml); the product must not need them.
DEVKIT_PACKAGES = ("rolesanywhere_devkit", "localcluster", "rolesanywhere_emulator")
PRODUCT_PACKAGES = (REPO / "operator" / "rolesanywhere_operator", REPO / "sidecar" / "rolesanywhere_sidecar")
#: Not the repository's own text: virtual environments, caches, run state, build output.
SKIPPED_DIRS = {".git", ".venv", ".venv-lowest", ".venv-lock", ".run", "__pycache__", ".pytest_cache",
                ".ruff_cache", "build"}
#: Spelled in two parts, so this file does not find itself.
IMPORT_PATH_EDITS = re.compile("sys" + r"\.path|PYTHON" + "PATH")


def build_context(destination: Path) -> Path:
    """The files the Dockerfile's build stage copies (its COPY lines without --from), laid out as it does."""
    build_stage = (REPO / "Dockerfile").read_text().split("\nFROM ")[1]
    for line in build_stage.splitlines():
        if not line.startswith("COPY ") or "--from" in line:
            continue
        *sources, target = line.split()[1:]
        for source in sources:
            into = destination / target if target.endswith("/") else destination / target.removeprefix("./")
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, into, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                into.mkdir(parents=True, exist_ok=True) if target.endswith("/") else into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / source, into / source if target.endswith("/") else into)
    return destination


@pytest.fixture(scope="module")
def product_wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The product's wheel, built as the image's build stage builds it (pip wheel --no-deps, no isolation)."""
    work = tmp_path_factory.mktemp("wheel")
    source = build_context(work / "src")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
         "--no-build-isolation", "--wheel-dir", str(work / "wheels"), str(source)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (work / "wheels").glob("rolesanywhere_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        yield archive


def test_the_product_wheel_carries_no_emulator(product_wheel):
    names = product_wheel.namelist()
    assert any(name.startswith("rolesanywhere_sidecar/") for name in names)
    assert any(name.startswith("rolesanywhere_operator/") for name in names)
    assert [name for name in names if "emulator" in name] == []
    assert [name for name in names if name.split("/")[0] in DEVKIT_PACKAGES] == []


def test_the_product_wheel_declares_no_emulator_command(product_wheel):
    (entry_points,) = [name for name in product_wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    text = product_wheel.read(entry_points).decode()
    assert "rolesanywhere-sidecar" in text and "rolesanywhere-operator" in text
    assert "emulator" not in text


@pytest.mark.parametrize("package", PRODUCT_PACKAGES, ids=lambda path: path.name)
def test_the_product_imports_nothing_of_the_dev_kit(package):
    offending = []
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offending += [f"{source.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in DEVKIT_PACKAGES]
    assert offending == []


def repository_files() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO).parts
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative) or not path.is_file():
            continue
        found.append(path)
    return found


def test_nothing_edits_the_import_path():
    """Modules are found because they are installed (hack/venv.sh installs the product and the dev kit)."""
    edits = []
    for path in repository_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        edits += [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                  for number, line in enumerate(text.splitlines(), 1) if IMPORT_PATH_EDITS.search(line)]  # fmt: skip
    assert edits == []
