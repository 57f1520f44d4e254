"""The shared pytest fixtures of every test tier, registered through the `pytest11` entry point of the
dev kit (hack/pyproject.toml), so no conftest imports them.

  tools_bin        session: the pinned binaries (hack/tools.sh builds them on first use)
  cluster          session: a local control plane in .run/test-cluster, or the cluster of
                   ROLESANYWHERE_TEST_KUBECONFIG (which must already run cert-manager)
  namespace        a fresh namespace, deleted (without waiting) after the test
  moto_server      session: a moto server; `.admin` keys for setup, `.create_role(...)`, `.client(...)`
  rolesanywhere_ca session: a root CA and an intermediate CA for workload certificates
  emulator_factory session: start_emulator(document, tls=None, host=LOOPBACK) -> EmulatorProcess; all stopped
                   at the end
  rolesanywhere    session: a running emulator trusting rolesanywhere_ca, with one profile allowing an
                   S3 read-only role; `.issue(...)` mints workload certificates, `.write(...)` writes them
  operator         module: the operator, out of cluster, its webhook on 127.0.0.1

The node tier (tests/node) adds, deselected with one summary line when the machine cannot run a node:
  node_parts       session: kubelet & co. and the images (hack/tools.sh node-bindir, hack/images.sh)
  node_cluster     module: a control plane with cert-manager and a real node in .run/test-node-cluster,
                   shared by the modules (shared_node); a nodepods.NodeCluster
  exclusive_node   module: stops the shared node, for a module that starts a node of its own
  node_rolesanywhere module: moto and an emulator listening on the node's address, where pods reach them,
                   trusting rolesanywhere_ca, with one S3 read-only role (short-lived credentials)
  local_node       module: skips a test that needs the local node's host (its cgroups, its network)

With ROLESANYWHERE_TEST_KUBECONFIG, the node tier runs on that cluster instead, given the images pushed to
a registry its nodes pull from (ROLESANYWHERE_TEST_IMAGES="operator=REF,sidecar=REF,app=REF") and an address of this
machine its pods reach (ROLESANYWHERE_TEST_HOST_FOR_PODS), where moto and the emulator then listen.

A failed test's report also carries each running operator's stacks and log tail.

A test marked `podrunner("tests/node/...::test_...")` runs pods with the pod runner, a process emulation,
where the node cannot run: it is skipped when the node tier runs in the same session, naming the node test
that checks the same in real containers.

Only pytest is imported here: the harnesses (and boto3, moto, the cluster) load when a test asks for a
fixture, so the unit tests run where only the runtime dependencies and pytest are installed.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

#: Run the integration tests against this kubeconfig instead of starting a local control plane.
TEST_KUBECONFIG_ENV = "ROLESANYWHERE_TEST_KUBECONFIG"
#: `skip` leaves the node tests out of a run (they need root and change machine-wide state).
NODE_TESTS_ENV = "ROLESANYWHERE_NODE_TESTS"
#: With TEST_KUBECONFIG_ENV: the node tier's images on your cluster, "operator=REF,sidecar=REF,app=REF".
TEST_IMAGES_ENV = "ROLESANYWHERE_TEST_IMAGES"
#: With TEST_KUBECONFIG_ENV: an address of this machine that your cluster's pods reach.
TEST_HOST_FOR_PODS_ENV = "ROLESANYWHERE_TEST_HOST_FOR_PODS"
#: Lifetime of the node tier's credentials, in multiples of what the sidecar's probes want left
#: (rolesanywhere_sidecar.files.MIN_VALIDITY): short, so the sidecar refreshes every ~10 s (its floor for
#: short sessions) and a renewed certificate is used within seconds, not the half hour of a real session.
NODE_CREDENTIAL_LIFETIME_IN_PROBE_VALIDITIES = 2


def node_tests_unavailable() -> str | None:
    """Why the node tests cannot run here (one line), or None."""
    if os.environ.get(NODE_TESTS_ENV, "").lower() == "skip":
        return f"node tests left out ({NODE_TESTS_ENV}=skip)"
    if os.environ.get(TEST_KUBECONFIG_ENV):
        missing = [name for name in (TEST_IMAGES_ENV, TEST_HOST_FOR_PODS_ENV) if not os.environ.get(name)]
        if missing:
            return f"node tests on {TEST_KUBECONFIG_ENV}'s cluster need {' and '.join(missing)} (hack/localcluster/NODE.md)"
        return None
    if os.geteuid() != 0:
        return (f"node tests need root (a bridge, network namespaces, iptables, containerd): run as root, or set "
                f"{NODE_TESTS_ENV}=skip")
    return None


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    from localcluster import ToolsUnavailable
    from localcluster import tools_bin as find_tools_bin

    try:
        return find_tools_bin()
    except ToolsUnavailable as error:
        pytest.fail(f"the pinned binaries are unavailable: {error}", pytrace=False)


@pytest.fixture(scope="session")
def cluster(tools_bin: Path):
    from localcluster import REPO_ROOT, cert_manager_crds
    from localcluster.controlplane import ControlPlane

    from rolesanywhere_devkit.cluster import Cluster

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
def namespace(cluster, request) -> str:
    """A fresh namespace, deleted (without waiting) after the test."""
    from rolesanywhere_devkit.processes import wait_for

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


@pytest.fixture(scope="session")
def moto_server():
    from rolesanywhere_devkit.aws import MotoServer

    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rolesanywhere_ca(tmp_path_factory):
    from rolesanywhere_devkit.aws import make_authorities

    return make_authorities(tmp_path_factory.mktemp("rolesanywhere-ca"))


@pytest.fixture(scope="session")
def emulator_factory(tmp_path_factory):
    """start_emulator(document: dict, tls=None, host=LOOPBACK) -> EmulatorProcess, stopped at the end of the
    session."""
    from rolesanywhere_devkit.aws import LOOPBACK, EmulatorProcess

    started: list[EmulatorProcess] = []

    def start_emulator(document: dict, tls: tuple[Path, Path] | None = None, host: str = LOOPBACK) -> EmulatorProcess:
        process = EmulatorProcess.from_document(document, tmp_path_factory.mktemp("emulator"), tls=tls, host=host)
        started.append(process)
        return process

    yield start_emulator
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def rolesanywhere(moto_server, rolesanywhere_ca, emulator_factory):
    from rolesanywhere_devkit.aws import S3_READ_ONLY_POLICY, RolesAnywhere, arn, emulator_config

    role_arn = moto_server.create_role(f"s3-read-only-{uuid.uuid4().hex[:8]}", S3_READ_ONLY_POLICY)
    trust_anchor_arn, profile_arn = arn("trust-anchor"), arn("profile")
    document = emulator_config(
        moto_server,
        trust_anchors=[{"arn": trust_anchor_arn, "caBundle": str(rolesanywhere_ca.bundle_path)}],
        profiles=[{"arn": profile_arn, "roleArns": [role_arn], "durationSeconds": 3600}],
    )
    return RolesAnywhere(
        moto=moto_server,
        emulator=emulator_factory(document),
        authorities=rolesanywhere_ca,
        trust_anchor_arn=trust_anchor_arn,
        profile_arn=profile_arn,
        role_arn=role_arn,
        document=document,
    )


@pytest.fixture(scope="module")
def operator(cluster, tmp_path_factory):
    """The operator, running for the tests of one module."""
    from rolesanywhere_devkit.operator import OperatorProcess

    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator")).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def node_parts():
    """(bin_dir, images): kubelet & co. and the images, built on first use (minutes; `make node-parts`), then
    cached."""
    from localcluster import ToolsUnavailable, node_images, node_tools_bin
    from localcluster import tools_bin as find_tools_bin
    from localcluster.node import Image

    reason = node_tests_unavailable()
    if reason:
        pytest.skip(reason)  # deselected already, unless a test outside tests/node asks for the fixture
    try:
        if os.environ.get(TEST_KUBECONFIG_ENV):
            pairs = (item.split("=", 1) for item in os.environ[TEST_IMAGES_ENV].split(",") if item.strip())
            return find_tools_bin(), {name.strip(): Image(name.strip(), ref.strip(), Path()) for name, ref in pairs}
        return node_tools_bin(), node_images()
    except ToolsUnavailable as error:
        pytest.fail(f"the node's binaries or images are unavailable: {error}", pytrace=False)


class SharedNode:
    """The cluster with a node that the node tier's modules share (one node per machine; each start costs
    half a minute): started with cert-manager on first use, stopped before a module that needs the machine's
    node for itself (`exclusive_node`) and at the end of the session."""

    def __init__(self, bin_dir: Path, images: dict) -> None:
        from localcluster import REPO_ROOT

        self.bin_dir, self.images = bin_dir, images
        self.root = REPO_ROOT / ".run" / "test-node-cluster"
        self.cluster = None

    def get(self):
        from localcluster import cert_manager_crds
        from localcluster.node import start_cluster

        from rolesanywhere_devkit.nodepods import NodeCluster

        if self.cluster is None:
            plane, _ = start_cluster(self.root, self.bin_dir, self.images, cert_manager_crds=cert_manager_crds())
            self.cluster = NodeCluster(plane.kubeconfig, self.bin_dir, plane, images=self.images)
        return self.cluster

    def stop(self) -> None:
        from localcluster.node import stop_cluster

        stop_cluster(self.root)
        self.cluster = None


@pytest.fixture(scope="session")
def shared_node(node_parts):
    node = SharedNode(*node_parts)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def node_cluster(node_parts, request):
    """The cluster with a node (the shared one; with TEST_KUBECONFIG_ENV, that cluster)."""
    from rolesanywhere_devkit.nodepods import NodeCluster

    bin_dir, images = node_parts
    external = os.environ.get(TEST_KUBECONFIG_ENV)
    if external:
        return NodeCluster(Path(external), bin_dir, images=images, host_for_pods=os.environ[TEST_HOST_FOR_PODS_ENV],
                           pull_policy="IfNotPresent", local=False)
    return request.getfixturevalue("shared_node").get()


@pytest.fixture(scope="module")
def exclusive_node(local_node, shared_node) -> None:
    """For a module that starts a node of its own (the restart test, the demo): the shared one stops first.
    Such modules run last (see pytest_collection_modifyitems), so the shared node starts once."""
    shared_node.stop()


@pytest.fixture(scope="module")
def node_rolesanywhere(node_cluster, rolesanywhere_ca, tmp_path_factory):
    """moto and an emulator on the node's address (started once its bridge exists), for pods to call."""
    from rolesanywhere_sidecar.files import MIN_VALIDITY

    from rolesanywhere_devkit.aws import (
        S3_READ_ONLY_POLICY,
        EmulatorProcess,
        MotoServer,
        RolesAnywhere,
        arn,
        emulator_config,
    )

    moto = MotoServer(host=node_cluster.host_for_pods)
    emulator = None
    try:
        role_arn = moto.create_role(f"s3-read-only-{uuid.uuid4().hex[:8]}", S3_READ_ONLY_POLICY)
        trust_anchor_arn, profile_arn = arn("trust-anchor"), arn("profile")
        document = emulator_config(
            moto,
            trust_anchors=[{"arn": trust_anchor_arn, "caBundle": str(rolesanywhere_ca.bundle_path)}],
            profiles=[{"arn": profile_arn, "roleArns": [role_arn]}],
            credential_lifetime_seconds=int(NODE_CREDENTIAL_LIFETIME_IN_PROBE_VALIDITIES * MIN_VALIDITY.total_seconds()),
        )
        emulator = EmulatorProcess.from_document(document, tmp_path_factory.mktemp("node-emulator"),
                                                 host=node_cluster.host_for_pods)
        yield RolesAnywhere(moto=moto, emulator=emulator, authorities=rolesanywhere_ca,
                            trust_anchor_arn=trust_anchor_arn, profile_arn=profile_arn, role_arn=role_arn,
                            document=document)
    finally:
        if emulator is not None:
            emulator.stop()
        moto.stop()


@pytest.fixture(scope="module")
def local_node() -> None:
    """Skips a test that needs the local node's host (with TEST_KUBECONFIG_ENV the node tier runs elsewhere)."""
    if os.environ.get(TEST_KUBECONFIG_ENV):
        pytest.skip(f"needs the local node's host, not {TEST_KUBECONFIG_ENV}'s cluster")


#: Why the node tier was left out of this run, and how many of its tests (for the one summary line).
_NODE_TIER_LEFT_OUT: list[tuple[str, int]] = []


@pytest.hookimpl(trylast=True)  # after tests/conftest.py marked the node tier
def pytest_collection_modifyitems(config, items):
    """The node tier where it cannot run is deselected, with one summary line saying why; where it runs, the
    pod-runner tests it replaces are skipped."""
    node_items = [item for item in items if item.get_closest_marker("node")]
    if not node_items:
        return
    reason = node_tests_unavailable()
    if reason is not None:
        items[:] = [item for item in items if not item.get_closest_marker("node")]
        config.hook.pytest_deselected(items=node_items)
        _NODE_TIER_LEFT_OUT.append((reason, len(node_items)))
        return
    for item in items:
        marker = item.get_closest_marker("podrunner")
        if marker:
            item.add_marker(pytest.mark.skip(reason=f"checked in real containers by {marker.args[0]}"))
    # Modules with a node of their own after those sharing one (a stable sort keeps every other order).
    items.sort(key=lambda item: "exclusive_node" in getattr(item, "fixturenames", ()))


def pytest_terminal_summary(terminalreporter):
    for reason, count in _NODE_TIER_LEFT_OUT:
        terminalreporter.write_line(f"node tier not run ({count} tests): {reason}", yellow=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries each running operator's stacks and log tail: a stalled operator
    (waiting on what?) is diagnosed from the failure itself, even on CI."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        harness = sys.modules.get("rolesanywhere_devkit.operator")  # loaded only if a test started one
        for process in list(harness.RUNNING if harness else ()):
            report.sections.append((f"operator {process.log_path.parent.name}: stacks", process.stacks()))
            report.sections.append((f"operator {process.log_path.parent.name}: log tail", process.log()[-6000:]))
