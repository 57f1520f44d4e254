"""The runtime dependencies as pyproject.toml declares them, for the tools and tests that check them.

pyproject.toml is the one place a dependency and its range are written; hack/lowest_deps.py installs each
at its floor, hack/lock.sh resolves them into requirements.lock (and those the sidecar image holds into
requirements-sidecar.lock), and tests/unit/test_dependencies.py holds the locks to the ranges.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rolesanywhere_devkit import REPO

PYPROJECT = REPO / "pyproject.toml"
#: The dev kit's (hack/pyproject.toml): the tests' and the demo's tools, never in the image.
DEVKIT_PYPROJECT = REPO / "hack" / "pyproject.toml"
LOCK = REPO / "requirements.lock"
#: The sidecar image's lock (the Dockerfile's `sidecar` target): the closure of sidecar_requirements().
SIDECAR_LOCK = REPO / "requirements-sidecar.lock"


class DependencyError(ValueError):
    """pyproject.toml or requirements.lock is not what the tools expect."""


def project(pyproject: Path = PYPROJECT) -> dict:
    return tomllib.loads(pyproject.read_text())["project"]


def runtime_requirements(pyproject: Path = PYPROJECT) -> list[Requirement]:
    return [Requirement(text) for text in project(pyproject)["dependencies"]]


def sidecar_requirements(pyproject: Path = PYPROJECT) -> list[Requirement]:
    """The runtime dependencies the sidecar image holds: those [tool.rolesanywhere.sidecar-image] names."""
    named = {canonicalize_name(name) for name in
             tomllib.loads(pyproject.read_text())["tool"]["rolesanywhere"]["sidecar-image"]["dependencies"]}
    found = [r for r in runtime_requirements(pyproject) if canonicalize_name(r.name) in named]
    missing = named - {canonicalize_name(r.name) for r in found}
    if missing:
        raise DependencyError(f"pyproject.toml: [tool.rolesanywhere.sidecar-image] names {sorted(missing)}, "
                              "which [project] dependencies do not declare")
    return found


def extra_requirements(extra: str, pyproject: Path = PYPROJECT) -> list[Requirement]:
    return [Requirement(text) for text in project(pyproject)["optional-dependencies"][extra]]


def floor(requirement: Requirement) -> str:
    """The version of `requirement`'s `>=` clause; DependencyError when it has none (or several)."""
    floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    if len(floors) != 1:
        raise DependencyError(
            f"pyproject.toml: dependency {str(requirement)!r} needs exactly one '>=' floor (e.g. "
            f"'{requirement.name}>=1.2.0,<2'): hack/lowest_deps.py installs every dependency at its floor"
        )
    return floors[0]


def floor_pins(pyproject: Path = PYPROJECT) -> list[str]:
    """Each runtime dependency pinned to its floor: `kopf>=1.45.0,<2` becomes `kopf==1.45.0`."""
    pins = []
    for requirement in runtime_requirements(pyproject):
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        marker = f"; {requirement.marker}" if requirement.marker else ""
        pins.append(f"{requirement.name}{extras}=={floor(requirement)}{marker}")
    return pins


#: One pin of a pip-compile lock: `name==version \` (its `--hash=` lines follow).
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def locked(lock: Path = LOCK) -> dict[str, tuple[str, int]]:
    """requirements.lock as {canonical name: (version, number of sha256 hashes)}."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for number, line in enumerate(lock.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = _PIN.match(text)
        if match:
            current = canonicalize_name(match["name"])
            if current in pins:
                raise DependencyError(f"{lock.name}:{number}: {match['name']} is pinned twice")
            pins[current] = (match["version"], 0)
        elif not text.startswith("--hash="):
            raise DependencyError(f"{lock.name}:{number}: expected 'name==version' or '--hash=...', got {text!r}")
        if current is not None:
            version, hashes = pins[current]
            pins[current] = (version, hashes + len(_HASH.findall(text)))
    return pins
