"""The Kubernetes side of figures 4, 6 and 8: a local control plane (or a given kubeconfig), the operator
run by the tests' harness, and a small API client for listing and for bulk creation in a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from localcluster import cert_manager_crds
from localcluster.controlplane import ControlPlane
from rolesanywhere_devkit.cluster import Cluster
from rolesanywhere_devkit.processes import wait_for

from .loadgen import tls_from_kubeconfig
from .paths import REPO


@dataclass
class BenchCluster(Cluster):
    """The tests' Cluster (kubeconfig, kubectl, apply: what the operator harness needs), plus an API client."""

    namespaces: list[str] = field(default_factory=list)  # created by the bench, deleted at the end

    def api(self) -> httpx.Client:
        with tempfile.TemporaryDirectory() as directory:
            server, tls = tls_from_kubeconfig(self.kubeconfig, Path(directory))
        return httpx.Client(base_url=server, verify=tls, timeout=60)

    def create_namespace(self, name: str) -> str:
        self.kubectl("create", "namespace", name)
        self.namespaces.append(name)
        # Pods cannot be created before the service-account controller made "default".
        wait_for(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            timeout=60, what=f"the default service account in {name}",
        )  # fmt: skip
        return name

    def create_all(self, path: str, objects: list[dict], in_flight: int, directory: Path) -> dict:
        """POST every object to `path` from a load generator process; its report (latencies, errors)."""
        directory.mkdir(parents=True, exist_ok=True)
        listing = directory / f"objects-{len(list(directory.iterdir()))}.jsonl"
        listing.write_text("".join(json.dumps(o) + "\n" for o in objects))
        args = [sys.executable, "-m", "bench.loadgen", "create", "--kubeconfig", str(self.kubeconfig),
                "--path", path, "--objects", str(listing), "--in-flight", str(in_flight)]  # fmt: skip
        completed = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO, timeout=1800)
        if completed.returncode != 0:
            raise RuntimeError(f"the load generator failed: {completed.stderr[-800:]}")
        report = json.loads(completed.stdout)
        if report["errors"]:
            raise RuntimeError(
                f"{report['errors']} of {len(objects)} creations failed: {report['first_error']}"
            )
        return report


class LocalControlPlane:
    """The control plane of hack/localcluster in the bench's work folder, with cert-manager."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.plane = ControlPlane(root, bin_dir)

    def start(self) -> BenchCluster:
        self.plane.start(cert_manager_crds=cert_manager_crds())
        return BenchCluster(self.plane.kubeconfig, self.plane.bin_dir)

    def stop(self) -> None:
        self.plane.stop()


class OperatorSession:
    """The cluster and the operator shared by figures 4, 6 and 8, started on first use, stopped at the end.

    The operator is run by the tests' harness (rolesanywhere_devkit.operator): out of cluster, its
    webhook on 127.0.0.1, registered under a name unique to the run and deleted when it stops.
    """

    def __init__(self, work: Path, bin_dir: Path, kubeconfig: Path | None, *, tracemalloc: bool = False) -> None:
        self.work = work
        self.tracemalloc = tracemalloc
        self.bin_dir = bin_dir
        self.external_kubeconfig = kubeconfig
        self.plane: LocalControlPlane | None = None
        self.cluster: BenchCluster | None = None
        self.operator = None
        self.operator_failure = ""

    def ensure_cluster(self) -> BenchCluster:
        if self.cluster is None:
            if self.external_kubeconfig is not None:
                self.cluster = BenchCluster(self.external_kubeconfig, self.bin_dir)
            else:
                self.plane = LocalControlPlane(self.work / "cluster", self.bin_dir)
                self.cluster = self.plane.start()
        return self.cluster

    @property
    def census_file(self) -> Path:
        """Where the operator writes its memory census on SIGUSR1 (see bench/operator_census.py)."""
        return self.work / "operator" / "census.json"

    def _census_launcher(self) -> str:
        """An executable running the operator under bench/operator_census.py, for the harness to start."""
        launcher = self.work / "operator-with-census"
        launcher.write_text(
            f"#!/bin/sh\nexec {sys.executable} -P {REPO / 'bench' / 'operator_census.py'} "
            f'--census-file {self.census_file} {"--tracemalloc " if self.tracemalloc else ""}"$@"\n'
        )
        launcher.chmod(0o755)
        return str(launcher)

    def ensure_operator(self):
        """The running operator (OperatorProcess); raises with its log's tail when it does not start."""
        from rolesanywhere_devkit import operator as operator_harness
        from rolesanywhere_devkit.operator import OperatorProcess

        # The harness starts the executable named by OPERATOR; ours wraps the same entry point.
        operator_harness.OPERATOR = self._census_launcher()

        if self.operator_failure:
            raise RuntimeError(f"the operator did not start: {self.operator_failure}")
        if self.operator is None:
            cluster = self.ensure_cluster()
            # The harness resyncs every 2 s for its tests; here the operator's own default applies.
            operator = OperatorProcess(cluster, self.work / "operator", extra_args=("--resync-interval=60",))
            try:
                operator.start()
            except Exception as error:
                operator.stop()
                self.operator_failure = f"{type(error).__name__}: {error}"
                raise
            self.operator = operator
        return self.operator

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        if self.cluster is not None and self.plane is None:  # someone else's cluster: leave it as found
            for namespace in self.cluster.namespaces:
                self.cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        if self.plane is not None:
            self.plane.stop()
