"""A control plane left running by a killed run does not break the next start in the same directory."""

from __future__ import annotations

import json

from localcluster.controlplane import ControlPlane
from rolesanywhere_devkit.processes import alive


def test_restart_over_a_stale_control_plane(tools_bin, tmp_path):
    root = tmp_path / "cluster"
    first = ControlPlane(root, tools_bin)
    first.start(cert_manager_crds=None)
    stale_pids = json.loads(first.state_file.read_text())["pids"]
    first.kubectl("create", "namespace", "left-behind")

    # A killed `make cluster-up` or pytest leaves the processes running and the state on disk.
    second = ControlPlane(root, tools_bin)
    try:
        second.start(cert_manager_crds=None)
        assert not any(alive(pid) for pid in stale_pids.values())
        assert second.kubectl("get", "namespace", "left-behind", check=False).returncode != 0  # data wiped
        assert second.kubectl("get", "namespace", "default").returncode == 0
        new_pids = json.loads(second.state_file.read_text())["pids"]
    finally:
        second.stop()
    assert not any(alive(pid) for pid in new_pids.values())
    assert not second.state_file.exists()
