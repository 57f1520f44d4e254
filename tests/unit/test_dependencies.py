"""pyproject.toml's ranges, the floors make test-lowest installs, and the image's hashed locks stay in step."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from rolesanywhere_devkit.pydeps import (
    LOCK,
    PYPROJECT,
    REPO,
    DependencyError,
    floor_pins,
    locked,
    runtime_requirements,
)

BUILD_LOCK = REPO / "requirements-build.lock"
DOCKERFILE = REPO / "Dockerfile"


def build_requirements() -> list[Requirement]:
    return [Requirement(text) for text in tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"]]


@pytest.mark.parametrize(("lock", "requirements"), [(LOCK, runtime_requirements), (BUILD_LOCK, build_requirements)],
                         ids=["runtime", "build"])
def test_the_lock_pins_every_declared_dependency_inside_its_range(lock, requirements):
    pins = locked(lock)
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock.name} has no pin for {requirement}: run make lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside pyproject.toml's {requirement}: run make lock"
        )


@pytest.mark.parametrize("lock", [LOCK, BUILD_LOCK], ids=["runtime", "build"])
def test_every_pin_has_a_hash(lock):
    pins = locked(lock)
    assert pins
    assert not [name for name, (_, hashes) in pins.items() if hashes == 0]


def test_the_locks_are_resolved_for_the_images_python():
    image = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)-", DOCKERFILE.read_text(), re.MULTILINE)
    assert image, "the Dockerfile's ARG PYTHON_IMAGE names no python:X.Y- image"
    for lock in (LOCK, BUILD_LOCK):
        assert f"pip-compile with Python {image[1]}\n" in lock.read_text(), f"{lock.name}: regenerate with make lock"


def test_the_image_installs_only_what_the_locks_hold():
    dockerfile = DOCKERFILE.read_text()
    for lock in ("requirements.lock", "requirements-build.lock"):
        assert re.search(rf"pip install [^\n]*--require-hashes --no-deps [^\n]*-r \S*{re.escape(lock)}", dockerfile)
    assert "pip install --no-cache-dir --no-deps --no-index /wheels/*.whl" in dockerfile
    assert "--no-build-isolation" in dockerfile  # the wheel's build backend is the locked one


def test_floors_are_the_declared_minimums():
    pins = floor_pins()
    assert len(pins) == len(runtime_requirements())
    assert "kopf==1.45.0" in pins and "kubernetes==37.0.0" in pins


def write_pyproject(tmp_path: Path, *dependencies: str) -> Path:
    pyproject = tmp_path / "pyproject.toml"
    quoted = ", ".join(f"'{d}'" for d in dependencies)  # TOML literal strings: markers hold double quotes
    pyproject.write_text(f'[project]\nname = "x"\nversion = "1"\ndependencies = [{quoted}]\n')
    return pyproject


def test_a_floor_keeps_extras_and_markers(tmp_path):
    pyproject = write_pyproject(tmp_path, "moto[server]>=5.0,<6", 'tomli>=2 ; python_version < "3.11"')
    assert floor_pins(pyproject) == ["moto[server]==5.0", 'tomli==2; python_version < "3.11"']


@pytest.mark.parametrize("dependency", ["kopf", "kopf<2", "kopf==1.45.0"])
def test_a_dependency_without_a_floor_is_refused_by_name(tmp_path, dependency):
    with pytest.raises(DependencyError, match=rf"{re.escape(dependency)}.*needs exactly one '>=' floor"):
        floor_pins(write_pyproject(tmp_path, dependency))


def test_a_malformed_lock_line_is_named(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("kopf==1.45.2 \\\n    --hash=sha256:" + "0" * 64 + "\nkopf>=1\n")
    with pytest.raises(DependencyError, match=r"requirements.lock:3: expected 'name==version'"):
        locked(lock)
