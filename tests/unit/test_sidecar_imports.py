"""What `rolesanywhere-sidecar serve` imports, as the sidecar image runs it: only the image's distributions.

The sidecar image (the Dockerfile's `sidecar` target) holds requirements-sidecar.lock and nothing else. A
fresh interpreter is given an import hook that finds no top-level module of a distribution outside that
lock, as the image's site-packages would not; the serve path must import completely there, and must not
even try the operator's packages.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from rolesanywhere_devkit.pydeps import SIDECAR_LOCK, locked

#: Runs in a fresh interpreter: argv[1] the image's distributions (canonical names), argv[2] the modules to
#: import. Prints what it refused and which modules ended up loaded.
AS_IN_THE_SIDECAR_IMAGE = r"""
import importlib, importlib.abc, importlib.metadata, json, re, sys

image = set(json.loads(sys.argv[1]))
owners = importlib.metadata.packages_distributions()
refused = []

class OnlyTheSidecarImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top.startswith("rolesanywhere_"):
            return None
        distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(top, ())}
        if distributions and not distributions & image:
            refused.append(top)
            raise ModuleNotFoundError(f"No module named {top!r} (not in the sidecar image)", name=top)
        return None

sys.meta_path.insert(0, OnlyTheSidecarImage())
for module in sys.argv[2].split(","):
    importlib.import_module(module)
print(json.dumps({"refused": sorted(set(refused)), "loaded": sorted(sys.modules)}))
"""

SERVE_PATH = "rolesanywhere_sidecar.cli,rolesanywhere_sidecar.serve"


def _installed_as_locked() -> list[str]:
    """The sidecar lock's pins that this environment does not hold at the lock's version."""
    differing = []
    for name, (version, _) in locked(SIDECAR_LOCK).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            differing.append(f"{name} {installed} (the lock: {version})")
    return differing


# What a release imports depends on its version (httpx 0.26 still imports sniffio), so this emulates the
# image only where the image's versions are installed: the project's .venv, not make test-lowest's floors.
pytestmark = pytest.mark.skipif(bool(_installed_as_locked()),
                                reason="not the sidecar image's versions: " + ", ".join(_installed_as_locked()))


def import_as_in_the_sidecar_image(modules: str) -> dict:
    image = sorted(locked(SIDECAR_LOCK))
    result = subprocess.run([sys.executable, "-c", AS_IN_THE_SIDECAR_IMAGE, json.dumps(image), modules],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def httpx_cli_extra() -> set[str]:
    """The distributions httpx's optional command line (`httpx[cli]`) needs; httpx tries them at import."""
    requirements = [Requirement(text) for text in importlib.metadata.requires("httpx") or []]
    return {canonicalize_name(r.name) for r in requirements
            if r.marker is not None and r.marker.evaluate({"extra": "cli"}) and not r.marker.evaluate({"extra": ""})}


def test_serve_imports_completely_with_only_the_sidecar_images_packages():
    found = import_as_in_the_sidecar_image(SERVE_PATH)
    assert "rolesanywhere_sidecar.serve" in found["loaded"]
    # httpx tries its optional command line (httpx._main: click, rich, pygments) and does without it; that
    # is all the serve path asks for that the image lacks.
    owners = importlib.metadata.packages_distributions()
    refused = {canonicalize_name(d) for name in found["refused"] for d in owners[name]}
    assert refused <= httpx_cli_extra(), sorted(refused)


def test_serve_never_reaches_for_the_operator_or_its_packages():
    found = import_as_in_the_sidecar_image(SERVE_PATH)
    loaded = {name.partition(".")[0] for name in found["loaded"]}
    # Not even tried: the operator, the emulator, and the operator's packages.
    assert not (loaded | set(found["refused"])) & {"kopf", "kubernetes", "aiohttp", "yaml",
                                                   "rolesanywhere_operator", "rolesanywhere_emulator"}
    assert "click" not in loaded  # tried by httpx's optional command line only, and absent from the image


def test_the_hook_refuses_what_the_sidecar_image_lacks():
    """The emulation is faithful: a package of the operator's image is not found."""
    image = sorted(locked(SIDECAR_LOCK))
    result = subprocess.run([sys.executable, "-c", AS_IN_THE_SIDECAR_IMAGE, json.dumps(image), "kopf"],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "No module named 'kopf' (not in the sidecar image)" in result.stderr
