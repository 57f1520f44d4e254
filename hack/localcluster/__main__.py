"""`python -m localcluster up|down|kubeconfig|status [--root DIR] [--node]`: the control plane from the command line.

With `--node`, `up` also starts a real node (containerd, kubelet, kube-proxy, kube-scheduler; needs root)
and writes the images' references to <root>/node/images.json. `down` always stops the node too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rolesanywhere_devkit.processes import TimedOut

from . import DEFAULT_ROOT, ToolsUnavailable, cert_manager_crds, node_images, node_tools_bin, tools_bin
from .controlplane import ControlPlane, ControlPlaneError
from .node import NODE_NAME, start_cluster, stop_cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "kubeconfig", "status"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="state directory (default: %(default)s)")
    parser.add_argument("--no-cert-manager", action="store_true", help="do not start cert-manager")
    parser.add_argument("--node", action="store_true", help="up: also start a real node (root; see node.py)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "kubeconfig":
            print(root / "kubeconfig")
            return 0
        if args.command == "down":
            stop_cluster(root)
            print(f"control plane in {root} stopped")
            return 0
        if args.command == "status":
            plane = ControlPlane(root, tools_bin())
            running = plane.running()
            print(f"control plane in {root}: {'running' if running else 'not running'}")
            return 0 if running else 1
        started = time.monotonic()
        if args.node:
            return up_with_node(root, started, cert_manager=not args.no_cert_manager)
        plane = ControlPlane(root, tools_bin())
        plane.start(cert_manager_crds=None if args.no_cert_manager else cert_manager_crds())
        print(f"control plane {plane.version()} up in {time.monotonic() - started:.1f}s; logs in {plane.log_dir}")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        return 0
    except (ToolsUnavailable, ControlPlaneError, TimedOut) as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 1


def up_with_node(root: Path, started: float, *, cert_manager: bool) -> int:
    if os.geteuid() != 0:
        print("localcluster: --node needs root (it installs packages, builds images with buildah and makes a"
              " bridge, network namespaces and iptables chains)", file=sys.stderr)
        return 1
    bin_dir = node_tools_bin()
    images = node_images()
    built = time.monotonic()
    plane, node = start_cluster(root, bin_dir, images, cert_manager_crds=cert_manager_crds() if cert_manager else None)
    print(f"control plane {plane.version()} and node {NODE_NAME} up in {time.monotonic() - started:.1f}s"
          f" ({built - started:.1f}s of it for the binaries and images); logs in {plane.log_dir} and {node.log_dir}")
    for name, image in images.items():
        print(f"  image {name}: {image.ref}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
