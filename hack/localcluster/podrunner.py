"""Run a Pod from the API as local processes, the way a kubelet would, for a control plane without nodes.

Kept only where the real node (localcluster.node) cannot be used: the node needs root (a bridge,
network namespaces, iptables chains, cgroups), and the pod runner needs nothing but the control plane.
It serves the no-root path: `make demo` without root (hack/demo.py --pod-runner) and the end-to-end
integration tests marked `podrunner`, which are skipped where the node tier runs (as root), because
tests/node checks the same in real containers from the image built from the Dockerfile. Everything it
cannot show (the image, the securityContext, native-sidecar start order, emptyDir ownership, the kubelet's
Secret updates) is checked on the node only.

The local control plane has no kubelet, so pods stay Pending. To prove an injected pod really gets
credentials, `PodRunner` reads the Pod (as the webhook mutated it), lays its volumes out under a
directory the way the kubelet does, starts its native sidecars and waits for their startupProbes,
runs its init containers, and then runs a command with an app container's environment.

What it does as the kubelet does:
- secret, configMap, downwardAPI and projected volumes are files behind an atomically swapped
  `..data` symlink (`<key> -> ..data/<key>`, `..data -> ..<timestamp>`), so `sync()` can update them
  the way a renewal reaches a running pod; emptyDir is a directory; a missing Secret or ConfigMap that
  is not optional is waited for;
- env is resolved in the kubelet's order: envFrom, then env (secretKeyRef, configMapKeyRef, fieldRef),
  with $(VAR) references expanded in env values, command and args;
- init containers run in order; one with restartPolicy Always is a native sidecar: it keeps running
  and the next one starts once its startupProbe (exec or httpGet) passes; `probe()` runs any probe of
  a container the same way (an httpGet probe passes on a status from 200 to 399, as the kubelet's).

What it must do differently, with no container runtime:
- the image is ignored: commands run from PATH (the running Python's bin directory first);
- volumes cannot be mounted, so paths under a container's volumeMounts are rewritten to the local
  directories in env values, command, args, workingDir and probe commands;
- every pod shares the host's loopback, so the ports the pod's containers listen on are remapped to free
  ports, and env values naming them (`127.0.0.1:PORT`, `localhost:PORT`, or a variable ending in PORT)
  and httpGet probes' ports (by number or by the name of a declared port) are rewritten to match. Those
  ports are the declared ones and the values of variables ending in PORT (a loopback listener such as
  the credentials sidecar's declares none: nothing outside the pod reaches it, so nothing needs to
  know); the pod's IP is 127.0.0.1, where its httpGet probes go;
- processes start with only PATH, HOME (a fresh directory) and `extra_env` from the host, so nothing
  of the host's environment (AWS credentials above all) leaks into a container.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from rolesanywhere_devkit.processes import TimedOut, free_port, terminate, wait_for

from .controlplane import kubectl

DEFAULT_TIMEOUT = 60.0
#: The pod's IP as its containers and probes see it: every pod here shares the host's loopback.
POD_IP = "127.0.0.1"


class PodRunnerError(RuntimeError):
    """The pod cannot be run; the message names the container or volume and what went wrong."""


@dataclass(frozen=True)
class ProbeResult:
    passed: bool
    #: What the probe saw: an exit code and output, or a status line and the start of the body.
    detail: str


@dataclass
class _Started:
    name: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class PodRunner:
    """Runs the pod `namespace/name` of the cluster behind `kubeconfig` under `root` (a fresh directory)."""

    bin_dir: Path  # holds kubectl
    kubeconfig: Path
    namespace: str
    name: str
    root: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    path_prefix: Sequence[Path] = (Path(sys.executable).parent,)
    timeout: float = DEFAULT_TIMEOUT

    pod: dict[str, Any] = field(init=False, default_factory=dict)
    _ports: dict[int, int] = field(init=False, default_factory=dict)
    _started: list[_Started] = field(init=False, default_factory=list)

    # --- life cycle --------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Read the pod, lay out its volumes, start its native sidecars and run its init containers."""
        self.pod = self._get_json("pod", self.name)
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("volumes", "logs", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        self._ports = {port: free_port() for port in self._declared_ports()}
        self.sync()
        for container in self.pod["spec"].get("initContainers") or []:
            if container.get("restartPolicy") == "Always":
                started = self.start_container(container["name"])
                self._wait_for_startup(container, started)
            else:
                result = self.run(container["name"], timeout=self.timeout)
                if result.returncode != 0:
                    raise PodRunnerError(
                        f"init container {container['name']} exited with {result.returncode}:\n"
                        f"{result.stdout}{result.stderr}"
                    )

    def stop(self) -> None:
        """Stop every process started, newest first (SIGTERM, then SIGKILL after 10 s)."""
        while self._started:
            started = self._started.pop()
            terminate(started.process)

    # --- containers --------------------------------------------------------------------------------

    def start_container(self, name: str) -> _Started:
        """Start a container's own command in the background (a sidecar); its output goes to logs/<name>.log."""
        container = self._container(name)
        argv, env, cwd = self._process_spec(container, None)
        log_path = self.root / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        started = _Started(name, process, log_path)
        self._started.append(started)
        return started

    def run(
        self, name: str, command: Sequence[str] | None = None, *, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run `command` (default: the container's own command and args) with container `name`'s env and mounts."""
        argv, env, cwd = self._process_spec(self._container(name), command)
        return subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout or self.timeout, check=False
        )

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def env(self, name: str) -> dict[str, str]:
        """The environment container `name` runs with (after path and port rewriting)."""
        return self._process_spec(self._container(name), ["true"])[1]

    def local_path(self, container: str, path: str) -> Path:
        """Where `path`, as container `container` sees it, is on this machine."""
        return Path(self._rewrite_paths(path, self._mounts(self._container(container))))

    # --- volumes -----------------------------------------------------------------------------------

    def sync(self) -> None:
        """Lay out (or refresh, with an atomic swap) every volume of the pod."""
        for volume in self.pod["spec"].get("volumes") or []:
            directory = self.root / "volumes" / volume["name"]
            if "emptyDir" in volume:
                directory.mkdir(exist_ok=True)
                continue
            files, mode = self._volume_files(volume)
            write_atomic_directory(directory, files, mode)

    def _volume_files(self, volume: dict[str, Any]) -> tuple[dict[str, bytes], int]:
        name = volume["name"]
        if "secret" in volume:
            source = volume["secret"]
            data = self._source_data("secret", source.get("secretName", ""), source.get("optional", False), name)
            return _select(data, source.get("items"), name), source.get("defaultMode", 0o644)
        if "configMap" in volume:
            source = volume["configMap"]
            data = self._source_data("configmap", source.get("name", ""), source.get("optional", False), name)
            return _select(data, source.get("items"), name), source.get("defaultMode", 0o644)
        if "downwardAPI" in volume:
            items = volume["downwardAPI"].get("items") or []
            return {item["path"]: self._field(item["fieldRef"]["fieldPath"]).encode() for item in items}, 0o644
        if "projected" in volume:
            return self._projected(volume), volume["projected"].get("defaultMode", 0o644)
        kinds = sorted(set(volume) - {"name"})
        raise PodRunnerError(f"volume {name}: type {', '.join(kinds)} is not supported by the pod runner")

    def _projected(self, volume: dict[str, Any]) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for source in volume["projected"].get("sources") or []:
            if "secret" in source:
                s = source["secret"]
                data = self._source_data("secret", s["name"], s.get("optional", False), volume["name"])
                files.update(_select(data, s.get("items"), volume["name"]))
            elif "configMap" in source:
                s = source["configMap"]
                data = self._source_data("configmap", s["name"], s.get("optional", False), volume["name"])
                files.update(_select(data, s.get("items"), volume["name"]))
            elif "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    files[item["path"]] = self._field(item["fieldRef"]["fieldPath"]).encode()
            elif "serviceAccountToken" in source:
                s = source["serviceAccountToken"]
                args = ["create", "token", self.pod["spec"].get("serviceAccountName", "default"), "-n", self.namespace,
                        f"--duration={s.get('expirationSeconds', 3600)}s"]
                if s.get("audience"):
                    args.append(f"--audience={s['audience']}")
                files[s["path"]] = self._kubectl(*args).stdout.strip().encode()
            else:
                raise PodRunnerError(f"volume {volume['name']}: projected source {sorted(source)} is not supported")
        return files

    def _source_data(self, kind: str, name: str, optional: bool, volume: str) -> dict[str, bytes]:
        """The data of a Secret or ConfigMap, waiting for it to exist unless it is optional."""

        def fetched() -> subprocess.CompletedProcess | None:
            result = self._kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
            return result if result.returncode == 0 or optional else None

        try:
            result = wait_for(fetched, timeout=self.timeout, what=f"{kind} {self.namespace}/{name}")
        except TimedOut:
            raise PodRunnerError(
                f"volume {volume}: {kind} {self.namespace}/{name} did not appear within {self.timeout:.0f}s"
            ) from None
        if result.returncode != 0:
            return {}
        obj = json.loads(result.stdout)
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    # --- environment -------------------------------------------------------------------------------

    def _process_spec(
        self, container: dict[str, Any], command: Sequence[str] | None
    ) -> tuple[list[str], dict[str, str], str]:
        mounts = self._mounts(container)
        home = self.root / "home" / container["name"]
        home.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join([*(str(p) for p in self.path_prefix), os.environ.get("PATH", "")])
        env = {"PATH": path, "HOME": str(home), **self.extra_env}
        env.update(self._container_env(container))
        env = {k: self._rewrite_ports(k, self._rewrite_paths(v, mounts)) for k, v in env.items()}
        if command is None:
            argv = [*(container.get("command") or []), *(container.get("args") or [])]
            if not argv:
                raise PodRunnerError(f"container {container['name']}: no command (the image's entrypoint is unknown here)")
        else:
            argv = list(command)
        argv = [self._rewrite_ports("", self._rewrite_paths(_expand(a, env), mounts)) for a in argv]
        cwd = self._rewrite_paths(container.get("workingDir", ""), mounts) or str(home)
        return argv, env, cwd

    def _container_env(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                data = self._source_data("configmap", ref["name"], ref.get("optional", False), container["name"])
            else:
                ref = source["secretRef"]
                data = self._source_data("secret", ref["name"], ref.get("optional", False), container["name"])
            env.update({prefix + k: v.decode() for k, v in data.items()})
        for item in container.get("env") or []:
            if "value" in item or "valueFrom" not in item:
                env[item["name"]] = _expand(item.get("value", ""), env)
                continue
            value_from = item["valueFrom"]
            if "fieldRef" in value_from:
                env[item["name"]] = self._field(value_from["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
                kind = "secret" if "secretKeyRef" in value_from else "configmap"
                ref = value_from.get("secretKeyRef") or value_from["configMapKeyRef"]
                data = self._source_data(kind, ref["name"], ref.get("optional", False), container["name"])
                if ref["key"] in data:
                    env[item["name"]] = data[ref["key"]].decode()
            else:
                raise PodRunnerError(f"container {container['name']}: env {item['name']}: {sorted(value_from)} "
                                     "is not supported by the pod runner")
        return env

    def _field(self, field_path: str) -> str:
        """A downward-API field of the pod."""
        metadata = self.pod["metadata"]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", field_path)
        if match:
            return (metadata.get(match.group(1)) or {}).get(match.group(2), "")
        fields = {
            "metadata.name": metadata.get("name", ""),
            "metadata.namespace": metadata.get("namespace", ""),
            "metadata.uid": metadata.get("uid", ""),
            "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", ""),
            "spec.nodeName": "localhost",
            "status.podIP": POD_IP,
            "status.hostIP": POD_IP,
        }
        if field_path not in fields:
            raise PodRunnerError(f"downward API field {field_path} is not supported by the pod runner")
        return fields[field_path]

    def _mounts(self, container: dict[str, Any]) -> list[tuple[str, str]]:
        """(mountPath, local path) pairs, longest mount path first."""
        mounts = []
        for mount in container.get("volumeMounts") or []:
            local = self.root / "volumes" / mount["name"]
            if mount.get("subPath"):
                local = local / mount["subPath"]
            mounts.append((mount["mountPath"].rstrip("/") or "/", str(local)))
        return sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    @staticmethod
    def _rewrite_paths(value: str, mounts: list[tuple[str, str]]) -> str:
        for mount_path, local in mounts:
            if value == mount_path or value.startswith(mount_path + "/"):
                return local + value[len(mount_path):]
        return value

    def _rewrite_ports(self, name: str, value: str) -> str:
        for port, local in self._ports.items():
            value = re.sub(rf"(?<=127\.0\.0\.1:){port}\b|(?<=localhost:){port}\b", str(local), value)
            if name.upper().endswith("PORT") and value == str(port):
                value = str(local)
        return value

    def _declared_ports(self) -> list[int]:
        spec = self.pod["spec"]
        containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        declared = {port["containerPort"] for container in containers for port in container.get("ports") or []}
        named = {
            int(item["value"])
            for container in containers
            for item in container.get("env") or []
            if item["name"].upper().endswith("PORT") and str(item.get("value", "")).isdigit()
            and 0 < int(item["value"]) < 65536
        }
        return sorted(declared | named)

    # --- probes and helpers ------------------------------------------------------------------------

    def probe(self, name: str, kind: str = "readinessProbe") -> ProbeResult:
        """Run container `name`'s probe `kind` (startupProbe, readinessProbe, livenessProbe) once."""
        container = self._container(name)
        probe = container.get(kind)
        if probe is None:
            raise PodRunnerError(f"container {name} has no {kind}")
        timeout = probe.get("timeoutSeconds", 1)
        if "exec" in probe:
            try:
                result = self.run(name, probe["exec"]["command"], timeout=timeout)
            except subprocess.TimeoutExpired:
                return ProbeResult(False, f"timed out after {timeout}s")
            return ProbeResult(result.returncode == 0, f"exit {result.returncode}: {result.stdout}{result.stderr}")
        if "httpGet" in probe:
            return self._http_probe(container, probe["httpGet"], timeout)
        kinds = sorted(set(probe) & {"exec", "httpGet", "tcpSocket", "grpc"})
        raise PodRunnerError(f"container {name}: {kind} {', '.join(kinds)} is not supported by the pod runner")

    def _http_probe(self, container: dict[str, Any], action: dict[str, Any], timeout: float) -> ProbeResult:
        port = self._probe_port(container, action["port"])
        host = action.get("host") or POD_IP
        path = action.get("path") or "/"
        headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
        if action.get("scheme", "HTTP").upper() == "HTTPS":
            # As the kubelet does: TLS, but the certificate is not verified.
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=ssl._create_unverified_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"User-Agent": "kube-probe/pod-runner", **headers})
            response = connection.getresponse()
            body = response.read(1024).decode(errors="replace")
        except OSError as error:
            return ProbeResult(False, f"GET {path} on port {port}: {error}")
        finally:
            connection.close()
        return ProbeResult(200 <= response.status < 400, f"GET {path} on port {port}: {response.status} {body}")

    def _probe_port(self, container: dict[str, Any], port: int | str) -> int:
        """A probe's port, by number or by the name of one the container declares, as remapped here."""
        if isinstance(port, str) and not port.isdigit():
            named = [p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port]
            if not named:
                raise PodRunnerError(f"container {container['name']}: a probe names port {port}, which it does not declare")
            port = named[0]
        return self._ports.get(int(port), int(port))

    def _wait_for_startup(self, container: dict[str, Any], started: _Started) -> None:
        if container.get("startupProbe") is None:
            return
        name = container["name"]
        last: list[ProbeResult] = []

        def passed() -> bool:
            if started.process.poll() is not None:
                raise PodRunnerError(
                    f"container {name} exited with {started.process.returncode} before its "
                    f"startupProbe passed; its log:\n{self.log(name)[-4000:]}"
                )
            last[:] = [self.probe(name, "startupProbe")]
            return last[0].passed

        try:
            wait_for(passed, timeout=self.timeout, what=f"container {name}'s startupProbe")
        except TimedOut:
            raise PodRunnerError(
                f"container {name}: startupProbe still failing after {self.timeout:.0f}s "
                f"({last[0].detail if last else 'never ran'}); its log:\n{self.log(name)[-4000:]}"
            ) from None

    def _container(self, name: str) -> dict[str, Any]:
        spec = self.pod["spec"]
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if container["name"] == name:
                return container
        raise PodRunnerError(f"pod {self.namespace}/{self.name} has no container named {name}")

    def _get_json(self, kind: str, name: str) -> dict[str, Any]:
        return json.loads(self._kubectl("get", kind, name, "-n", self.namespace, "-o", "json").stdout)

    def _kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return kubectl(self.bin_dir, self.kubeconfig, *args, check=check)


def write_atomic_directory(directory: Path, files: Mapping[str, bytes], mode: int = 0o644) -> None:
    """Make `directory` hold `files` as the kubelet's atomic writer does: a swap of the `..data` link."""
    directory.mkdir(parents=True, exist_ok=True)
    data_link = directory / "..data"
    old_target = os.readlink(data_link) if data_link.is_symlink() else None
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    version = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    version.chmod(0o755)  # mkdtemp makes it private; the kubelet's are readable like the files in them
    for relative, content in files.items():
        target = version / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    staging = directory / "..data_tmp"
    if staging.is_symlink():
        staging.unlink()
    staging.symlink_to(version.name)
    staging.replace(data_link)  # the atomic step: readers see the old or the new files, never a mix
    tops = {relative.split("/", 1)[0] for relative in files}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in directory.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old_target and old_target != version.name:
        shutil.rmtree(directory / old_target, ignore_errors=True)


def _select(data: Mapping[str, bytes], items: list[dict[str, Any]] | None, volume: str) -> dict[str, bytes]:
    if not items:
        return dict(data)
    selected = {}
    for item in items:
        if item["key"] not in data:
            raise PodRunnerError(f"volume {volume}: key {item['key']} is missing from its source")
        selected[item.get("path", item["key"])] = data[item["key"]]
    return selected


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known variables are replaced, unknown ones stay, $$ is a literal $."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, value)
