"""The node tier: a control plane with a real node (containerd, runc, kubelet, kube-proxy), pods in containers.

Opt-in (`make test-node`, marker `node`): it needs root, the node's Debian packages (hack/node-deps.sh
installs them), kubelet & co. (hack/tools.sh node-bindir) and the images (hack/images.sh). The
cluster lives in .run/test-node-cluster; `cluster` is overridden here, so the shared `namespace`
fixture makes its namespaces on this cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from localcluster import REPO_ROOT, ToolsUnavailable, cert_manager_crds, node_images, node_tools_bin
from localcluster.node import Image, start_cluster, stop_cluster
from rolesanywhere_devkit.cluster import Cluster


@dataclass
class NodeCluster(Cluster):
    """The shared `Cluster` helpers, plus the node's images."""

    images: dict[str, Image] = field(default_factory=dict)

    def image(self, name: str) -> str:
        return self.images[name].ref


@pytest.fixture(scope="session")
def node_parts() -> tuple[Path, dict[str, Image]]:
    """kubelet & co. and the images, built on first use (minutes), then cached."""
    if os.geteuid() != 0:
        pytest.fail("the node tests need root (a bridge, network namespaces, iptables)", pytrace=False)
    try:
        return node_tools_bin(), node_images()
    except ToolsUnavailable as error:
        pytest.fail(f"the node's binaries or images are unavailable: {error}", pytrace=False)


@pytest.fixture(scope="module")
def cluster(node_parts, request):
    """A control plane with a node, per module: one node per machine, so a module may start its own.
    A module that sets `CERT_MANAGER = True` gets cert-manager too."""
    bin_dir, images = node_parts
    root = REPO_ROOT / ".run" / "test-node-cluster"
    crds = cert_manager_crds() if getattr(request.module, "CERT_MANAGER", False) else None
    plane, _ = start_cluster(root, bin_dir, images, cert_manager_crds=crds)
    try:
        yield NodeCluster(plane.kubeconfig, bin_dir, images=images)
    finally:
        stop_cluster(root)
