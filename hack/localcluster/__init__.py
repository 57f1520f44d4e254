"""A real Kubernetes control plane on 127.0.0.1 for the tests and the demo.

etcd, kube-apiserver, kube-controller-manager and cert-manager's controller,
built from their Go modules by hack/tools.sh, run as local processes. There is
no kubelet: pods stay Pending unless something (the pod runner) runs them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_SCRIPT = REPO_ROOT / "hack" / "tools.sh"

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


def cert_manager_crds() -> Path:
    result = subprocess.run([str(TOOLS_SCRIPT), "crds"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolsUnavailable(result.stderr.strip() or "hack/tools.sh crds failed")
    return Path(result.stdout.strip())
