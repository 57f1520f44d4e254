"""The pod runner's kubelet imitations that need no cluster: the atomic volume writer, $(VAR) expansion,
path and port rewriting, and httpGet probes."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from localcluster.podrunner import PodRunner, PodRunnerError, _expand, write_atomic_directory


def test_volume_files_sit_behind_an_atomically_swapped_data_link(tmp_path: Path):
    volume = tmp_path / "certificate"
    write_atomic_directory(volume, {"tls.crt": b"one", "tls.key": b"key-one", "nested/ca.crt": b"ca"}, 0o640)
    first = os.readlink(volume / "..data")
    assert os.readlink(volume / "tls.crt") == "..data/tls.crt"
    assert os.readlink(volume / "nested") == "..data/nested"
    assert (volume / "tls.crt").read_bytes() == b"one"
    assert ((volume / "tls.key").stat().st_mode & 0o777) == 0o640

    write_atomic_directory(volume, {"tls.crt": b"two", "tls.key": b"key-two"})
    second = os.readlink(volume / "..data")
    assert second != first and not (volume / first).exists(), "the old version must be removed"
    assert (volume / "tls.crt").read_bytes() == b"two"
    assert not (volume / "nested").exists(), "a key that went away must go away"
    assert sorted(p.name for p in volume.iterdir()) == sorted(["..data", second, "tls.crt", "tls.key"])


def test_expand_follows_kubernetes_rules():
    env = {"NAME": "web", "PORT": "8080"}
    assert _expand("$(NAME):$(PORT)", env) == "web:8080"
    assert _expand("$(MISSING) stays", env) == "$(MISSING) stays"
    assert _expand("$$(NAME) is escaped", env) == "$(NAME) is escaped"


def test_paths_under_mounts_and_declared_ports_are_rewritten(tmp_path: Path):
    runner = PodRunner(Path("/unused"), Path("/unused"), "shop", "web", tmp_path)
    container = {
        "name": "app",
        "volumeMounts": [
            {"name": "creds", "mountPath": "/var/run/secrets/rolesanywhere"},
            {"name": "root", "mountPath": "/var/run"},
        ],
    }
    mounts = runner._mounts(container)
    assert runner._rewrite_paths("/var/run/secrets/rolesanywhere/token", mounts) == f"{tmp_path}/volumes/creds/token"
    assert runner._rewrite_paths("/var/run/other", mounts) == f"{tmp_path}/volumes/root/other"
    assert runner._rewrite_paths("/var/running", mounts) == "/var/running"

    runner._ports = {9911: 40001}
    assert runner._rewrite_ports("URI", "http://127.0.0.1:9911/v1/credentials") == "http://127.0.0.1:40001/v1/credentials"
    assert runner._rewrite_ports("URI", "http://localhost:9911") == "http://localhost:40001"
    assert runner._rewrite_ports("ROLESANYWHERE_PORT", "9911") == "40001"
    assert runner._rewrite_ports("REPLICAS", "9911") == "9911"
    assert runner._rewrite_ports("URI", "http://127.0.0.1:99110") == "http://127.0.0.1:99110"


def test_ports_are_those_declared_and_those_a_variable_ending_in_port_names(tmp_path: Path):
    """The credentials sidecar declares no port (it listens on the loopback only), yet two pods run here
    at once must not share its port."""
    runner = PodRunner(Path("/unused"), Path("/unused"), "shop", "web", tmp_path)
    runner.pod = {
        "spec": {
            "initContainers": [{"name": "sidecar", "env": [{"name": "ROLESANYWHERE_PORT", "value": "9911"}]}],
            "containers": [
                {"name": "app", "ports": [{"containerPort": 8080}],
                 "env": [{"name": "REPLICAS", "value": "3"}, {"name": "DB_PORT", "value": "$(X)"}]},
            ],
        }
    }
    assert runner._declared_ports() == [8080, 9911]


class _Readyz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/readyz" and self.headers.get("X-Probe") != "fail" else 503
        self.send_response(status)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n" if status == 200 else b"no\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener():
    """An HTTP server on a free loopback port, standing for a container's remapped health port."""
    server = HTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_http_probe_goes_to_the_remapped_port_by_number_or_by_name(tmp_path: Path, listener: int):
    """As the kubelet: the pod's IP (here the shared loopback), a declared port's name resolved in the
    container, 200-399 passes; the port is the one the pod runner gave the pod instead of the declared one."""
    runner = PodRunner(Path("/unused"), Path("/unused"), "shop", "web", tmp_path)
    by_name = {"httpGet": {"path": "/readyz", "port": "ra-health", "scheme": "HTTP"}}
    runner.pod = {
        "spec": {
            "initContainers": [{
                "name": "sidecar",
                "ports": [{"name": "ra-health", "containerPort": 9912}],
                "startupProbe": by_name,
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9912,
                                               "httpHeaders": [{"name": "X-Probe", "value": "fail"}]}},
                "livenessProbe": {"httpGet": {"path": "/readyz", "port": "web"}},
            }],
            "containers": [{"name": "app", "startupProbe": {"tcpSocket": {"port": 80}}}],
        }
    }
    runner._ports = {9912: listener}
    startup = runner.probe("sidecar", "startupProbe")
    assert startup.passed and f"on port {listener}: 200" in startup.detail
    readiness = runner.probe("sidecar", "readinessProbe")
    assert not readiness.passed and ": 503" in readiness.detail
    with pytest.raises(PodRunnerError, match="a probe names port web, which it does not declare"):
        runner.probe("sidecar", "livenessProbe")
    with pytest.raises(PodRunnerError, match="startupProbe tcpSocket is not supported"):
        runner.probe("app", "startupProbe")


def test_an_http_probe_of_a_port_nobody_listens_on_fails_saying_so(tmp_path: Path, listener: int):
    runner = PodRunner(Path("/unused"), Path("/unused"), "shop", "web", tmp_path)
    runner.pod = {"spec": {"containers": [{"name": "app", "readinessProbe": {"httpGet": {"path": "/", "port": 1}}}]}}
    result = runner.probe("app")
    assert not result.passed and "GET / on port 1: " in result.detail
