"""The node tier: a control plane with a real node (containerd, runc, kubelet, kube-proxy), pods in containers.

Part of `make test` (marker `node`, and `integration`, so `make test-unit` leaves it out); `make test-node`
runs it alone. It needs root, the node's Debian packages (hack/node-deps.sh), kubelet & co. and the images
(`make node-parts`); without root, or with ROLESANYWHERE_NODE_TESTS=skip, the tier is deselected and one
summary line says why.
The fixtures come from the dev kit's pytest plugin (node_parts, node_cluster, node_rolesanywhere,
exclusive_node); here `cluster` is the node cluster the modules share, so the shared `namespace` fixture
makes its namespaces there.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cluster(node_cluster):
    return node_cluster
