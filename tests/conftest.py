"""Shared fixtures: the pinned binaries, the local control plane, a fresh namespace per test.

Integration tests run against a control plane this session starts on 127.0.0.1
(in .run/test-cluster, so a killed run's leftovers are cleaned up by the next),
or against the cluster in ROLESANYWHERE_TEST_KUBECONFIG when a person points the
suite at a real one (which must already run cert-manager).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "hack"))

from localcluster import ToolsUnavailable, cert_manager_crds
from localcluster import tools_bin as find_tools_bin
from localcluster.controlplane import ControlPlane, wait_for
from support.cluster import Cluster

#: Run the integration tests against this kubeconfig instead of starting a local control plane.
TEST_KUBECONFIG_ENV = "ROLESANYWHERE_TEST_KUBECONFIG"


def pytest_collection_modifyitems(items):
    integration_dir, node_dir = REPO_ROOT / "tests" / "integration", REPO_ROOT / "tests" / "node"
    for item in items:
        if integration_dir in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
        if node_dir in Path(item.fspath).parents:
            item.add_marker(pytest.mark.node)




@pytest.fixture(scope="session")
def tools_bin() -> Path:
    try:
        return find_tools_bin()
    except ToolsUnavailable as error:
        pytest.fail(f"the pinned binaries are unavailable: {error}", pytrace=False)


@pytest.fixture(scope="session")
def cluster(tools_bin: Path):
    external = os.environ.get(TEST_KUBECONFIG_ENV)
    if external:
        yield Cluster(Path(external), tools_bin)
        return
    plane = ControlPlane(REPO_ROOT / ".run" / "test-cluster", tools_bin, audit=True)
    plane.start(cert_manager_crds=cert_manager_crds())
    try:
        yield Cluster(plane.kubeconfig, tools_bin, plane)
    finally:
        plane.stop()


@pytest.fixture
def namespace(cluster: Cluster, request) -> str:
    """A fresh namespace, deleted (without waiting) after the test."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    # Pods cannot be created before the service-account controller made "default".
    wait_for(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=60,
        what=f"the default service account in {name}",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
