"""pyproject.toml's ranges, the floors make test-lowest installs, and the images' hashed locks stay in step."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from rolesanywhere_devkit.pydeps import (
    LOCK,
    PYPROJECT,
    REPO,
    SIDECAR_LOCK,
    DependencyError,
    floor_pins,
    locked,
    runtime_requirements,
    sidecar_requirements,
)

BUILD_LOCK = REPO / "requirements-build.lock"
DOCKERFILE = REPO / "Dockerfile"
LOCKS = [LOCK, SIDECAR_LOCK, BUILD_LOCK]
LOCK_IDS = ["runtime", "sidecar", "build"]
#: The packages the sidecar image runs (the protocol, the settings kernel, the sidecar), where they live.
SIDECAR_PACKAGES = [REPO / "sidecar" / name for name in
                    ("rolesanywhere_protocol", "rolesanywhere_settings", "rolesanywhere_sidecar")]


def build_requirements() -> list[Requirement]:
    return [Requirement(text) for text in tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"]]


@pytest.mark.parametrize(("lock", "requirements"), [(LOCK, runtime_requirements),
                                                    (SIDECAR_LOCK, sidecar_requirements),
                                                    (BUILD_LOCK, build_requirements)], ids=LOCK_IDS)
def test_the_lock_pins_every_declared_dependency_inside_its_range(lock, requirements):
    pins = locked(lock)
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock.name} has no pin for {requirement}: run make lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside pyproject.toml's {requirement}: run make lock"
        )


@pytest.mark.parametrize("lock", LOCKS, ids=LOCK_IDS)
def test_every_pin_has_a_hash(lock):
    pins = locked(lock)
    assert pins
    assert not [name for name, (_, hashes) in pins.items() if hashes == 0]


def test_the_locks_are_resolved_for_the_images_python():
    image = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)-", DOCKERFILE.read_text(), re.MULTILINE)
    assert image, "the Dockerfile's ARG PYTHON_IMAGE names no python:X.Y- image"
    for lock in LOCKS:
        assert f"pip-compile with Python {image[1]}\n" in lock.read_text(), f"{lock.name}: regenerate with make lock"


def dockerfile_stages() -> dict[str, str]:
    """The Dockerfile's stages by name: {name: the stage's text from its FROM line}."""
    parts = re.split(r"^(FROM \S+ AS (\S+))\n", DOCKERFILE.read_text(), flags=re.MULTILINE)
    return {parts[i + 1]: parts[i] + "\n" + parts[i + 2] for i in range(1, len(parts), 3)}


def test_the_build_stage_installs_only_its_lock():
    build = dockerfile_stages()["build"]
    assert re.search(r"pip install [^\n]*--require-hashes --no-deps [^\n]*-r requirements-build.lock", build)
    assert "--no-build-isolation" in build  # the wheel's build backend is the locked one


@pytest.mark.parametrize(("target", "lock"), [("operator", LOCK), ("sidecar", SIDECAR_LOCK)])
def test_each_image_installs_only_what_its_lock_holds(target, lock):
    stages = dockerfile_stages()
    stage = stages[target]
    installs = re.findall(r"-r /tmp/(requirements[\w-]*\.lock)", stage)
    assert installs == [lock.name], f"the {target} target installs {installs}, not {lock.name}"
    assert re.search(rf"pip install [^\n]*--require-hashes --no-deps [^\n]*-r \S*{re.escape(lock.name)}", stage)
    assert "pip install --no-cache-dir --no-deps --no-index /wheels/*.whl" in stage
    assert stage.startswith("FROM runtime AS ")  # the user and environment both images share
    assert "USER 65532:65532" in stages["runtime"] + stage
    assert 'ENTRYPOINT ["rolesanywhere-sidecar"]' in stage


def test_the_operator_is_the_default_target():
    """`docker build .` (no --target) still makes the operator's image, as before the sidecar had its own."""
    assert list(dockerfile_stages())[-1] == "operator"


def test_the_sidecar_lock_is_the_runtime_lock_without_the_operators_packages():
    runtime, sidecar = locked(LOCK), locked(SIDECAR_LOCK)
    assert {name: version for name, (version, _) in sidecar.items()} == {
        name: runtime[name][0] for name in sidecar}, "both images run the same releases: run make lock"
    operator_only = {canonicalize_name(r.name) for r in runtime_requirements()} - {
        canonicalize_name(r.name) for r in sidecar_requirements()}
    assert operator_only >= {"kopf", "kubernetes", "aiohttp", "pyyaml"}
    # click comes with kopf; httpx imports it only for its optional command line (the `cli` extra).
    assert not (operator_only | {"click"}) & sidecar.keys(), sorted((operator_only | {"click"}) & sidecar.keys())


def third_party_imports(package: Path) -> set[str]:
    """The top-level names of what a package's modules import (at any depth), other than the standard
    library and the project's own packages."""
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.partition(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and not n.startswith("rolesanywhere_")
            and n != "__future__"}


def test_the_sidecar_image_declares_exactly_what_the_sidecar_imports():
    """[tool.rolesanywhere.sidecar-image] names the distributions of what the sidecar's packages import:
    one the code needs cannot be missing from the image, nor one it dropped be shipped."""
    distributions = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(d) for package in SIDECAR_PACKAGES for name in third_party_imports(package)
                for d in distributions[name]}
    assert imported == {canonicalize_name(r.name) for r in sidecar_requirements()}


def test_a_sidecar_name_without_a_declared_range_is_refused(tmp_path):
    pyproject = write_pyproject(tmp_path, "httpx>=0.26,<1")
    pyproject.write_text(pyproject.read_text() + '[tool.rolesanywhere.sidecar-image]\ndependencies = ["httpx", "h2"]\n')
    with pytest.raises(DependencyError, match=r"names \['h2'\], which \[project\] dependencies do not declare"):
        sidecar_requirements(pyproject)


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
