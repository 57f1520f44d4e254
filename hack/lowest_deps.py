"""Prove the dependency floors: the project installed with every runtime dependency at exactly its floor.

    python hack/lowest_deps.py     (make test-lowest; a step of make test)

pyproject.toml declares each floor once (`kopf>=1.45.0,<2`); this pins each to `==` its floor in a venv of
its own (.venv-lowest, rebuilt only when pyproject.toml changes, so a warm run costs the checks only), with
the transitive dependencies resolved as pip would for a user, then checks there:
  - pip check: the floors are consistent with each other's own requirements;
  - each console script of [project.scripts] answers --help, and the operator's handlers import;
  - the unit tests whose imports need only the runtime dependencies and pytest (the rest need the test
    extras, which could pull the floors up; the files left out are named).
A floor that is too low fails here, not in a user's install.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rolesanywhere_devkit.pydeps import (
    DEVKIT_PYPROJECT,
    REPO,
    DependencyError,
    extra_requirements,
    floor_pins,
    project,
)

VENV = REPO / ".venv-lowest"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"
UNIT_TESTS = REPO / "tests" / "unit"
#: The test tools installed beside the floors (at their declared range from the test extra, not pinned);
#: setuptools, because a unit test builds the wheel.
TEST_TOOLS = ("pytest", "pytest-timeout", "setuptools")
#: Where the repository's own modules are: the dev kit's packages (installed beside the floors, without
#: its `aws` extra) and the product's.
LOCAL_ROOTS = (REPO / "hack", REPO / "operator", REPO / "sidecar")


def say(message: str) -> None:
    print(f"hack/lowest_deps.py: {message}", flush=True)


def fail(message: str) -> None:
    print(f"hack/lowest_deps.py: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def run(*command: str | Path, what: str) -> None:
    result = subprocess.run([str(part) for part in command], cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        fail(f"{what} failed at the floors (exit {result.returncode}):\n{result.stdout}{result.stderr}")


def install(pins: list[str], tools: list[str]) -> None:
    """A fresh .venv-lowest with the project and the dev kit (editable) and the pins; skipped when neither
    pyproject.toml changed."""
    wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + DEVKIT_PYPROJECT.read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text() == wanted:
        return
    say(f"installing the floors into {VENV.name}: {' '.join(pins)}")
    # From scratch: a venv that once held newer versions must not pass for one at the floors.
    shutil.rmtree(VENV, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    run(base, "-m", "venv", VENV, what="creating the venv")
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", ".", "-e", "hack", *pins, *tools,
        what="installing the project with its floors")
    STAMP.write_text(wanted)


def imported_modules(source: Path) -> set[str]:
    """The modules `source` imports, anywhere in it, by dotted name (absolute imports only)."""
    modules = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import name` may import the submodule package.name: follow it if it is one.
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def local_files(module: str) -> list[Path] | None:
    """The repository's files that importing `module` runs (its packages' __init__ too); None: not ours."""
    parts = module.split(".")
    for base in LOCAL_ROOTS:
        if not ((base / f"{parts[0]}.py").is_file() or (base / parts[0] / "__init__.py").is_file()):
            continue
        files = [base.joinpath(*parts[:n], "__init__.py") for n in range(1, len(parts) + 1)]
        files.append(base.joinpath(*parts[:-1], f"{parts[-1]}.py"))
        return [file for file in files if file.is_file()]
    return None


def third_party_imports(test: Path) -> set[str]:
    """Every third-party top-level module `test` needs, through the repository's own modules too."""
    seen: set[Path] = set()
    pending, found = [test, REPO / "tests" / "conftest.py"], set()
    while pending:
        source = pending.pop()
        if source in seen:
            continue
        seen.add(source)
        for module in imported_modules(source):
            files = local_files(module)
            if files is not None:
                pending.extend(files)
            elif module.split(".")[0] not in sys.stdlib_module_names:
                found.add(module.split(".")[0])
    return found


def split_unit_tests() -> tuple[list[Path], dict[Path, set[str]]]:
    """The unit test files that run at the floors, and those left out with the modules they lack."""
    roots = sorted({root for test in UNIT_TESTS.glob("test_*.py") for root in third_party_imports(test)})
    probe = "import importlib.util, sys; print(' '.join(r for r in sys.argv[1:] if importlib.util.find_spec(r) is None))"
    result = subprocess.run([PYTHON, "-c", probe, *roots], capture_output=True, text=True, check=True)
    missing = set(result.stdout.split())
    runnable, left_out = [], {}
    for test in sorted(UNIT_TESTS.glob("test_*.py")):
        lacks = third_party_imports(test) & missing
        if lacks:
            left_out[test] = lacks
        else:
            runnable.append(test)
    return runnable, left_out


def main() -> None:
    started = time.monotonic()
    try:
        pins = floor_pins()
    except DependencyError as error:
        fail(str(error))
    tools = [str(r) for r in extra_requirements("test") if r.name in TEST_TOOLS]
    install(pins, tools)
    run(PYTHON, "-m", "pip", "check", "--disable-pip-version-check", what="pip check")
    for script in [*project()["scripts"], *project(DEVKIT_PYPROJECT)["scripts"]]:
        run(VENV / "bin" / script, "--help", what=f"{script} --help")
    run(PYTHON, "-c", "import rolesanywhere_operator.handlers", what="importing rolesanywhere_operator.handlers")
    runnable, left_out = split_unit_tests()
    for test, lacks in left_out.items():
        say(f"left out {test.relative_to(REPO)}: needs {', '.join(sorted(lacks))} (test extras)")
    if not runnable:
        fail("no unit test file runs on the runtime dependencies alone: the check would prove nothing")
    result = subprocess.run([PYTHON, "-m", "pytest", "-q", "-m", "not integration", "-p", "no:cacheprovider",
                             *[str(test.relative_to(REPO)) for test in runnable]], cwd=REPO, check=False)
    if result.returncode != 0:
        fail(f"the unit tests failed at the floors ({' '.join(pins)})")
    say(f"the floors work ({' '.join(pins)}), in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
