"""A real Kubernetes control plane on 127.0.0.1 for the tests and the demo.

etcd, kube-apiserver, kube-controller-manager and cert-manager's controller,
built from their Go modules by hack/tools.sh, run as local processes. By default
there is no kubelet: pods stay Pending unless something (the pod runner, the
no-root path) runs them. With a node (node.py: `up --node`, as root; the demo
and the node tests use it) pods run in containers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rolesanywhere_devkit import REPO as REPO_ROOT

TOOLS_SCRIPT = REPO_ROOT / "hack" / "tools.sh"
IMAGES_SCRIPT = REPO_ROOT / "hack" / "images.sh"
NODE_DEPS_SCRIPT = REPO_ROOT / "hack" / "node-deps.sh"
#: The state directory of `make cluster-up` (and of the demo, unless told otherwise).
DEFAULT_ROOT = REPO_ROOT / ".run" / "cluster"

#: Overrides where the pinned binaries are found (the Makefile sets it; otherwise hack/tools.sh builds them).
TOOLS_BIN_ENV = "ROLESANYWHERE_TOOLS_BIN"


class ToolsUnavailable(RuntimeError):
    """The pinned binaries could not be found or built."""


def tools_bin() -> Path:
    """The directory holding kube-apiserver, etcd, kubectl, helm, cert-manager-controller and aws_signing_helper."""
    configured = os.environ.get(TOOLS_BIN_ENV)
    if configured:
        path = Path(configured)
        if not (path / "kube-apiserver").exists():
            raise ToolsUnavailable(f"{TOOLS_BIN_ENV}={configured} does not hold kube-apiserver: run `hack/tools.sh bindir`")
        return path
    result = subprocess.run([str(TOOLS_SCRIPT), "bindir"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolsUnavailable(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "hack/tools.sh failed")
    return Path(result.stdout.strip())


def _script(argv: list[str], what: str) -> str:
    """Run one of the hack/ scripts, passing its progress to our stderr; fail with its last line."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        stdout, stderr = _relay(proc)
    if proc.returncode != 0:
        lines = stderr.strip().splitlines()
        raise ToolsUnavailable(lines[-1] if lines else f"{what} failed")
    return stdout


def _relay(proc: subprocess.Popen) -> tuple[str, str]:
    assert proc.stderr is not None and proc.stdout is not None
    lines = []
    for line in proc.stderr:
        sys.stderr.write(line)
        lines.append(line)
    return proc.stdout.read(), "".join(lines)


def node_tools_bin() -> Path:
    """tools_bin() plus kubelet, kube-proxy and kube-scheduler; installs the node's Debian packages if missing."""
    _script([str(NODE_DEPS_SCRIPT)], "hack/node-deps.sh")
    return Path(_script([str(TOOLS_SCRIPT), "node-bindir"], "hack/tools.sh node-bindir").strip())


def node_images() -> dict:
    """The node's images (pause, base, operator, sidecar, app), built by hack/images.sh unless cached."""
    from .node import Image

    images = {}
    for line in _script([str(IMAGES_SCRIPT), "build"], "hack/images.sh").splitlines():
        name, ref, archive = line.split()
        images[name] = Image(name, ref, Path(archive))
    return images


def cert_manager_crds() -> Path:
    result = subprocess.run([str(TOOLS_SCRIPT), "crds"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolsUnavailable(result.stderr.strip() or "hack/tools.sh crds failed")
    return Path(result.stdout.strip())
