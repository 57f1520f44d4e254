"""The local node's configuration, as pure data: what keeps pods on this machine and the kubelet working here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from localcluster.controlplane import SERVICE_CIDR
from localcluster.node import (
    BRIDGE,
    NODE_IP,
    POD_CIDR,
    chain_cleanup,
    cni_config,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)


def test_pods_get_routes_to_the_pod_subnet_and_the_service_range_only():
    (bridge,) = cni_config(Path("/run/x/ipam"))["plugins"]
    assert bridge["bridge"] == BRIDGE
    assert bridge["isGateway"] is False and bridge["ipMasq"] is False  # no default route, no NAT off the node
    assert bridge["ipam"]["routes"] == [{"dst": SERVICE_CIDR, "gw": NODE_IP}]
    (range_,) = bridge["ipam"]["ranges"][0]
    assert range_["subnet"] == POD_CIDR and range_["gateway"] == NODE_IP
    assert bridge["ipam"]["dataDir"] == "/run/x/ipam"


def test_containerd_keeps_everything_under_its_directory_and_restricts_oom_score_adj():
    config = tomllib.loads(containerd_config(Path("/r/node/containerd"), "localhost/pause:1"))
    assert config["root"] == "/r/node/containerd/root" and config["state"] == "/r/node/containerd/state"
    assert config["grpc"]["address"] == "/r/node/containerd/containerd.sock"
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "localhost/pause:1"
    assert cri["cni"]["conf_dir"] == "/r/node/cni/net.d"
    assert cri["containerd"]["runtimes"]["runc"]["options"] == {"SystemdCgroup": False, "Root": "/r/node/containerd/runc"}


def test_the_kubelet_runs_on_cgroup_v1_with_cgroupfs_and_serves_tls_on_the_node_address():
    config = kubelet_config(Path("/r/node"), Path("/r/pki/ca.crt"), Path("/r/node/containerd/containerd.sock"))
    assert config["cgroupDriver"] == "cgroupfs" and config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["containerRuntimeEndpoint"] == "unix:///r/node/containerd/containerd.sock"
    assert config["address"] == NODE_IP and config["readOnlyPort"] == 0
    assert config["tlsCertFile"] == "/r/node/pki/kubelet-serving.crt"
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["x509"] == {"clientCAFile": "/r/pki/ca.crt"}
    assert config["resolvConf"] == ""


def test_kube_proxy_uses_iptables_and_listens_on_loopback_only():
    config = kube_proxy_config(Path("/r/node/kube-proxy.kubeconfig"))
    assert config["mode"] == "iptables" and config["clusterCIDR"] == POD_CIDR
    assert config["healthzBindAddress"].startswith("127.0.0.1:") and config["metricsBindAddress"].startswith("127.0.0.1:")
    assert config["nodePortAddresses"] == [f"{NODE_IP}/32"]


LISTING = """-P INPUT ACCEPT
-P FORWARD ACCEPT
-N KUBE-FORWARD
-N RAONODE-FORWARD
-N DOCKER-USER
-A FORWARD -j RAONODE-FORWARD
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -j DOCKER-USER
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A RAONODE-FORWARD -i raonode0 -o raonode0 -j ACCEPT
"""


def test_cleanup_removes_our_chains_and_the_jumps_to_them_and_nothing_else():
    assert chain_cleanup(LISTING) == [
        ["-D", "FORWARD", "-j", "RAONODE-FORWARD"],
        ["-D", "FORWARD", "-m", "comment", "--comment", "kubernetes forwarding rules", "-j", "KUBE-FORWARD"],
        ["-F", "KUBE-FORWARD"],
        ["-F", "RAONODE-FORWARD"],
        ["-X", "KUBE-FORWARD"],
        ["-X", "RAONODE-FORWARD"],
    ]
    assert chain_cleanup("-P INPUT ACCEPT\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n") == []
