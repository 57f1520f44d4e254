"""`python -m localcluster up|down|kubeconfig|status [--root DIR]`: the control plane from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import REPO_ROOT, ToolsUnavailable, cert_manager_crds, tools_bin
from .controlplane import ControlPlane, ControlPlaneError

DEFAULT_ROOT = REPO_ROOT / ".run" / "cluster"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "kubeconfig", "status"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="state directory (default: %(default)s)")
    parser.add_argument("--no-cert-manager", action="store_true", help="do not start cert-manager")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "kubeconfig":
            print(root / "kubeconfig")
            return 0
        if args.command == "down":
            ControlPlane(root, Path("/nonexistent")).stop()
            print(f"control plane in {root} stopped")
            return 0
        bin_dir = tools_bin()
        plane = ControlPlane(root, bin_dir)
        if args.command == "status":
            running = plane.running()
            print(f"control plane in {root}: {'running' if running else 'not running'}")
            return 0 if running else 1
        started = time.monotonic()
        plane.start(cert_manager_crds=None if args.no_cert_manager else cert_manager_crds())
        print(f"control plane {plane.version()} up in {time.monotonic() - started:.1f}s; logs in {plane.log_dir}")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        return 0
    except (ToolsUnavailable, ControlPlaneError) as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
