"""A real node for the local control plane: containerd, runc, the kubelet, kube-proxy and kube-scheduler.

Pods run in containers, from images built on this machine (hack/images.sh), on a pod network that
lives only here: a Linux bridge holding the node's address and the network namespaces the CNI
bridge plugin makes for pods. Pods get routes to the pod subnet and the Service range only, and a
firewall chain drops anything forwarded to or from the bridge from other interfaces, so no pod
traffic leaves the machine.

One node per machine: the bridge, the `kubepods` cgroups and kube-proxy's iptables chains are
machine-wide. `NODE_CLAIM` records which cluster directory owns them; a second cluster asking for a
node while the first one runs is refused with a message naming it.

All state lives under `<cluster root>/node`. `stop()` takes everything down whether or not the
processes are still alive: it kills what runs in the pod cgroups, unmounts whatever is mounted under
the node directory, deletes the pod network namespaces, the bridge and every KUBE-/CNI-/RAONODE-
iptables chain, so a killed run never breaks the next start.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rolesanywhere_devkit.processes import alive, free_port, stop, wait_for

from . import pki
from .controlplane import (
    SERVICE_CIDR,
    ControlPlane,
    ControlPlaneError,
    write_kubeconfig,
)

NODE_NAME = "local-node"
BRIDGE = "raonode0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"  # the bridge's address: the node's InternalIP and the pods' gateway
NODE_CLAIM = Path("/run/rolesanywhere-operator-node.json")
CNI_BIN_DIR = Path("/usr/lib/cni")
COMPONENTS = ("containerd", "kubelet", "kube-proxy", "kube-scheduler")
#: Our own iptables chains; kube-proxy's and the kubelet's start with KUBE-, the CNI plugins' with CNI-.
CHAIN_PREFIXES = ("KUBE-", "CNI-", "RAONODE-")


class NodeError(ControlPlaneError):
    """The node did not come up or could not be cleaned up; the message names the part and its log."""


@dataclass(frozen=True)
class Image:
    name: str  # pause, base, operator, app
    ref: str  # localhost/rolesanywhere-NAME:KEY
    archive: Path  # an OCI archive for `ctr images import`


@dataclass
class Node:
    """The node of the control plane rooted at `root`; `bin_dir` holds kubelet, kube-proxy and kube-scheduler."""

    root: Path
    bin_dir: Path
    images: dict[str, Image] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.root / "node"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    # -- lifecycle ---------------------------------------------------------

    def prepare(self) -> None:
        """Before the control plane starts: clean up what a killed run left, claim the machine, make the bridge."""
        _check_host()
        self.stop()
        self._claim()
        for sub in ("logs", "pki", "containerd", "kubelet", "cni"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{NODE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        previous = {key: _sysctl(key) for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")}
        self._write_state({"sysctl": previous, "pids": {}})
        # A Service whose endpoint is a pod is DNATed on the host and forwarded back onto the bridge;
        # bridged replies must pass iptables so conntrack can undo the DNAT.
        _set_sysctl("net.ipv4.ip_forward", "1")
        _set_sysctl("net.bridge.bridge-nf-call-iptables", "1")
        self._install_firewall()

    def start_runtime(self, *, timeout: float = 120) -> None:
        """After prepare(), and while the control plane starts: containerd, with the images imported."""
        state = self._read_state()
        self._write_runtime_configs()
        self._spawn(state, "containerd", ["/usr/bin/containerd", f"--config={self.dir / 'containerd.toml'}"])
        wait_for(lambda: self._ctr("version", check=False).returncode == 0, timeout=timeout,
                 what=f"containerd at {self.socket} (log: {self.log_dir / 'containerd.log'})")
        for image in self.images.values():
            if image.name != "base":  # only other images build FROM it; no pod runs it
                self._ctr("images", "import", str(image.archive))

    def start(self, plane: ControlPlane, *, timeout: float = 120) -> None:
        """After the control plane is up and start_runtime(): the kubelet, kube-proxy and kube-scheduler."""
        state = self._read_state()
        try:
            self._guard_apiserver(plane.api_port())
            self._write_pki(plane)
            self._write_configs(plane)
            self._spawn(state, "kube-scheduler", [
                str(self.bin_dir / "kube-scheduler"), f"--kubeconfig={self.dir / 'kube-scheduler.kubeconfig'}",
                "--leader-elect=false", "--secure-port=0",
            ])
            self._spawn(state, "kubelet", [
                str(self.bin_dir / "kubelet"),
                f"--config={self.dir / 'kubelet.yaml'}",
                f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
                f"--root-dir={self.dir / 'kubelet'}",
                f"--cert-dir={self.dir / 'pki'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
            ])
            self._spawn(state, "kube-proxy", [str(self.bin_dir / "kube-proxy"), f"--config={self.dir / 'kube-proxy.yaml'}"])
            wait_for(lambda: self._ready(plane, state), timeout=timeout,
                     what=f"node {NODE_NAME} to be Ready (log: {self.log_dir / 'kubelet.log'})")
            wait_for(lambda: self._kubernetes_endpoint(plane), timeout=timeout,
                     what="the kubernetes Service's endpoint (the API server's lease reconciler)")
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Take the node down and remove everything it made on the host; safe to call on a stopped node.

        The machine-wide parts (pod cgroups, the bridge, iptables chains, sysctls) are left alone while
        another cluster directory holds the machine's node claim: then only our own processes,
        mounts and directory go.
        """
        owner = self._claimed_by()
        if not self.dir.exists() and owner != str(self.root):
            return  # never started here, or another cluster's node: nothing of ours to touch
        machine_wide = owner in (None, str(self.root))
        state = self._read_state()
        for name in reversed(COMPONENTS):
            pid = state.get("pids", {}).get(name)
            if pid and self._owns(pid):
                stop(pid, grace=5, group=True)
        stop(*self._stray_processes(), grace=2)
        if machine_wide:
            _kill_pod_cgroups()
            stop(*self._stray_processes(), grace=2)  # shims that outlived their containers
        self._unmount_all()
        if machine_wide:
            _delete_pod_netns()
            if Path(f"/sys/class/net/{BRIDGE}").exists():
                _run("ip", "link", "del", BRIDGE, check=False)
            _remove_chains()
            for key, value in state.get("sysctl", {}).items():
                if value is not None:
                    _set_sysctl(key, value)
        _remove_container_log_links(self.dir / "pod-logs")
        shutil.rmtree(self.dir, ignore_errors=True)
        if owner == str(self.root):
            NODE_CLAIM.unlink(missing_ok=True)

    # -- helpers for users of the node -------------------------------------

    def ctr(self, *args: str) -> str:
        """Run containerd's `ctr` in the Kubernetes namespace of this node's containerd."""
        return self._ctr(*args).stdout

    # -- internals ---------------------------------------------------------

    def _claimed_by(self) -> str | None:
        try:
            claim = json.loads(NODE_CLAIM.read_text())
        except (OSError, ValueError):
            return None
        if not any(alive(pid) for pid in claim.get("pids", [])) and not Path(claim.get("root", "/nonexistent"), "node").exists():
            return None  # a claim whose cluster is gone
        return claim.get("root")

    def _claim(self) -> None:
        owner = self._claimed_by()
        if owner not in (None, str(self.root)):
            raise NodeError(f"another local node runs on this machine, from {owner}: stop it first "
                            f"(`.venv/bin/python -m localcluster down --root {owner}`)")
        NODE_CLAIM.write_text(json.dumps({"root": str(self.root), "pids": [os.getpid()]}))

    def _install_firewall(self) -> None:
        # Forwarding is allowed between pods on the bridge and nowhere else.
        _run("iptables", "-N", "RAONODE-FORWARD")
        _run("iptables", "-A", "RAONODE-FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")
        _run("iptables", "-A", "RAONODE-FORWARD", "-i", BRIDGE, "-j", "DROP")
        _run("iptables", "-A", "RAONODE-FORWARD", "-o", BRIDGE, "-j", "DROP")
        _run("iptables", "-I", "FORWARD", "1", "-j", "RAONODE-FORWARD")

    def _guard_apiserver(self, port: int) -> None:
        # The API server listens on every address (IPv4 and IPv6) for the pods' sake; take it only from
        # loopback and the bridge.
        for tool in ("iptables", "ip6tables"):
            _run(tool, "-N", "RAONODE-INPUT")
            _run(tool, "-A", "RAONODE-INPUT", "-i", "lo", "-j", "RETURN")
            _run(tool, "-A", "RAONODE-INPUT", "-i", BRIDGE, "-j", "RETURN")
            _run(tool, "-A", "RAONODE-INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP")
            _run(tool, "-I", "INPUT", "1", "-j", "RAONODE-INPUT")

    def _write_pki(self, plane: ControlPlane) -> None:
        now = dt.datetime.now(dt.UTC)
        ca = pki.load(plane.pki_dir, "ca")
        out = self.dir / "pki"
        pki.issue(f"system:node:{NODE_NAME}", now=now, issuer=ca, client=True,
                  organizations=("system:nodes",)).write(out, "kubelet-client")
        pki.issue(NODE_NAME, now=now, issuer=ca, server=True, dns_names=(NODE_NAME,),
                  ip_addresses=(NODE_IP,)).write(out, "kubelet-serving")
        pki.issue("system:kube-proxy", now=now, issuer=ca, client=True).write(out, "kube-proxy")
        pki.issue("system:kube-scheduler", now=now, issuer=ca, client=True).write(out, "kube-scheduler")
        server = f"https://127.0.0.1:{plane.api_port()}"
        for user in ("kubelet-client", "kube-proxy", "kube-scheduler"):
            name = "kubelet" if user == "kubelet-client" else user
            write_kubeconfig(self.dir / f"{name}.kubeconfig", server, plane.pki_dir / "ca.crt",
                             out / f"{user}.crt", out / f"{user}.key", user=user)

    def _write_runtime_configs(self) -> None:
        d = self.dir
        pause = self.images.get("pause")
        if pause is None:
            raise NodeError("no pause image: run hack/images.sh build")
        (d / "containerd.toml").write_text(containerd_config(d / "containerd", pause.ref))
        (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
        (d / "cni" / "net.d" / "10-rolesanywhere.conflist").write_text(json.dumps(cni_config(d / "cni" / "ipam"), indent=2))

    def _write_configs(self, plane: ControlPlane) -> None:
        d = self.dir
        (d / "kubelet.yaml").write_text(json.dumps(kubelet_config(d, plane.pki_dir / "ca.crt", self.socket), indent=2))
        (d / "kube-proxy.yaml").write_text(json.dumps(kube_proxy_config(d / "kube-proxy.kubeconfig"), indent=2))

    def _spawn(self, state: dict, name: str, argv: list[str]) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.dir)
        state.setdefault("pids", {})[name] = proc.pid
        self._write_state(state)
        claim = json.loads(NODE_CLAIM.read_text())
        claim["pids"] = list(state["pids"].values())
        NODE_CLAIM.write_text(json.dumps(claim))

    def _ready(self, plane: ControlPlane, state: dict) -> bool:
        for name, pid in state["pids"].items():
            if not alive(pid):
                log = self.log_dir / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise NodeError(f"{name} exited during start-up; last lines of {log}:\n{tail}")
        result = plane.kubectl("get", "node", NODE_NAME, "-o",
                               "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
        return result.stdout.strip() == "True"

    def _kubernetes_endpoint(self, plane: ControlPlane) -> bool:
        result = plane.kubectl("get", "endpoints", "kubernetes", "-n", "default", "-o",
                               "jsonpath={.subsets[*].addresses[*].ip}", check=False)
        return NODE_IP in result.stdout.split()

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args],
                                capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def _owns(self, pid: int) -> bool:
        try:
            return str(self.dir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    def _stray_processes(self) -> list[int]:
        """Processes whose command line names this node's directory (components, containerd's shims)."""
        mine = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid() and self._owns(int(entry.name)):
                mine.append(int(entry.name))
        return mine

    def _unmount_all(self) -> None:
        """Unmount everything under the node directory, deepest first (rootfs overlays, shm, emptyDirs, netns)."""
        prefix = str(self.dir) + "/"
        for _ in range(3):
            points = [p for p in _mount_points() if p.startswith(prefix)]
            if not points:
                return
            for point in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)


def start_cluster(root: Path, bin_dir: Path, images: dict[str, Image], *,
                  cert_manager_crds: Path | None, timeout: float = 120) -> tuple[ControlPlane, Node]:
    """A control plane and its node under `root`; on failure both are taken down again."""
    node = Node(root, bin_dir, images)
    plane = ControlPlane(root, bin_dir, node_ip=NODE_IP)
    try:
        node.prepare()
        # containerd and its image imports (~20 s) need no API server: run them while the control plane starts.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            runtime = pool.submit(node.start_runtime, timeout=timeout)
            plane.start(cert_manager_crds=cert_manager_crds, timeout=timeout)
            runtime.result()
        node.start(plane, timeout=timeout)
    except BaseException:
        stop_cluster(root)
        raise
    (node.dir / "images.json").write_text(json.dumps({n: i.ref for n, i in images.items()}, indent=2))
    return plane, node


def stop_cluster(root: Path) -> None:
    """Stop the node (if there is one) and the control plane under `root`."""
    Node(root, Path("/nonexistent")).stop()
    ControlPlane(root, Path("/nonexistent")).stop()


# -- configuration (pure) ------------------------------------------------------


def containerd_config(root: Path, sandbox_image: str) -> str:
    """containerd 1.6's config: everything under `root`, images only from what was imported."""
    return f"""version = 2
root = "{root / 'root'}"
state = "{root / 'state'}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{root / 'containerd.sock'}"

[ttrpc]
  address = "{root / 'containerd.sock.ttrpc'}"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # The sandbox asks for oom_score_adj -998, which this kind of machine refuses (runc fails with EOF).
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, so down finds and unmounts them there.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{root / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{root.parent / 'cni' / 'net.d'}"
    max_conf_num = 1
"""


def cni_config(ipam_dir: Path) -> dict:
    """The bridge plugin on our bridge; pods get routes to the pod subnet and the Service range only."""
    return {
        "cniVersion": "1.0.0",
        "name": "rolesanywhere-local",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,  # the bridge already holds NODE_IP; no default route in pods
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": POD_CIDR, "rangeStart": "10.244.0.10", "gateway": NODE_IP}]],
                    "routes": [{"dst": SERVICE_CIDR, "gw": NODE_IP}],
                },
            }
        ],
    }


def kubelet_config(node_dir: Path, ca: Path, socket: Path) -> dict:
    pki_dir = node_dir / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{socket}",
        "cgroupDriver": "cgroupfs",  # no systemd on these machines
        "failCgroupV1": False,  # cgroups are v1 here
        "failSwapOn": False,
        "address": NODE_IP,
        "port": free_port(),
        "readOnlyPort": 0,
        "healthzPort": 0,
        "tlsCertFile": str(pki_dir / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki_dir / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},  # only holders of a certificate of the cluster's CA get here
        "enforceNodeAllocatable": [],
        "localStorageCapacityIsolation": False,
        "resolvConf": "",  # no DNS: pods resolve nothing and so send nothing off the machine
        "podLogsDir": str(node_dir / "pod-logs"),
        "volumePluginDir": str(node_dir / "kubelet" / "volume-plugins"),
        "imageGCHighThresholdPercent": 100,  # the images were imported, not pulled: never collect them
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "maxPods": 30,
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
        "syncFrequency": "10s",
    }


def kube_proxy_config(kubeconfig: Path) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
    }


# -- the host ------------------------------------------------------------------


def _check_host() -> None:
    if os.geteuid() != 0:
        raise NodeError("the local node needs root (it creates a bridge, network namespaces and iptables chains)")
    missing = [c for c in ("containerd", "ctr", "runc", "iptables", "conntrack", "ip") if shutil.which(c) is None]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(str(CNI_BIN_DIR / "bridge"))
    if missing:
        raise NodeError(f"missing on this machine: {', '.join(missing)} (run hack/node-deps.sh)")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def _sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", *key.split(".")).read_text().strip()
    except OSError:
        return None


def _set_sysctl(key: str, value: str) -> None:
    try:
        Path("/proc/sys", *key.split(".")).write_text(value)
    except OSError as error:
        raise NodeError(f"cannot set {key}={value}: {error}") from error


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        points.append(point.encode().decode("unicode_escape"))  # \040 for a space, as the kernel escapes
    return points


def _kill_pod_cgroups() -> None:
    """Kill whatever still runs in the kubelet's pod cgroups (`kubepods` in every v1 hierarchy), then remove them."""
    roots = [Path(p) / "kubepods" for p in Path("/sys/fs/cgroup").glob("*") if (Path(p) / "kubepods").is_dir()]
    if not roots:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = set()
        for root in roots:
            for procs in root.rglob("cgroup.procs"):
                try:
                    pids.update(int(p) for p in procs.read_text().split())
                except OSError:
                    pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    for root in roots:
        for cgroup in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                cgroup.rmdir()
            except OSError:
                pass
        try:
            root.rmdir()
        except OSError:
            pass


def _delete_pod_netns() -> None:
    """Pod namespaces that an older containerd put in /run/netns: ours hold an address of POD_CIDR."""
    netns_dir = Path("/run/netns")
    if not netns_dir.is_dir():
        return
    prefix = POD_CIDR.rsplit(".", 1)[0] + "."
    for ns in netns_dir.glob("cni-*"):
        addresses = _run("ip", "-n", ns.name, "-4", "-o", "addr", check=False).stdout
        if f"inet {prefix}" in addresses or not addresses.strip():
            _run("ip", "netns", "del", ns.name, check=False)


def _remove_chains() -> None:
    """Delete every KUBE-, CNI- and RAONODE- chain (and the rules jumping to them) in IPv4 and IPv6 iptables."""
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            listing = _run(tool, "-w", "-t", table, "-S", check=False).stdout
            for args in chain_cleanup(listing):
                _run(tool, "-w", "-t", table, *args, check=False)


def chain_cleanup(listing: str) -> list[list[str]]:
    """The iptables arguments that remove our chains from one table, given its `iptables -S` listing:
    first the rules of other chains that jump to ours, then our chains' rules, then the chains."""
    ours = [line.split()[1] for line in listing.splitlines()
            if line.startswith("-N ") and line.split()[1].startswith(CHAIN_PREFIXES)]
    jumps = []
    for line in listing.splitlines():
        parts = shlex.split(line)
        if len(parts) > 2 and parts[0] == "-A" and parts[1] not in ours and "-j" in parts:
            target = parts[parts.index("-j") + 1]
            if target in ours:
                jumps.append(["-D", *parts[1:]])
    return jumps + [["-F", chain] for chain in ours] + [["-X", chain] for chain in ours]


def _remove_container_log_links(pod_logs: Path) -> None:
    """The kubelet links /var/log/containers/*.log to the pod logs; drop the links into ours."""
    for link in Path("/var/log/containers").glob("*.log"):
        try:
            if link.is_symlink() and str(os.readlink(link)).startswith(str(pod_logs)):
                link.unlink()
        except OSError:
            pass
