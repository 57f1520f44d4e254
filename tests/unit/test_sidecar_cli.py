"""The command line: exit codes and messages of check, credential-process and serve (no network)."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rolesanywhere_devkit.sidecar import reset_sidecar_logging
from rolesanywhere_sidecar import cli

ARGS = [
    "--certificate", "/nonexistent/tls.crt",
    "--private-key", "/nonexistent/tls.key",
    "--trust-anchor-arn", "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0123abcd-0123-4567-89ab-0123456789ab",
    "--profile-arn", "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0123abcd-0123-4567-89ab-0123456789ab",
    "--role-arn", "arn:aws:iam::123456789012:role/app",
    "--endpoint", "http://127.0.0.1:9",
]  # fmt: skip


@pytest.fixture(autouse=True)
def restore_logging_and_signals():
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)
    reset_sidecar_logging()


def run(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), environ={}, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_check_fails_until_credentials_valid_for_a_minute_are_written(tmp_path):
    code, _, stderr = run("check", "--output-dir", str(tmp_path))
    assert code == 1 and "not ready" in stderr and "does not exist yet" in stderr
    (tmp_path / "credentials.json").write_text(
        json.dumps({"AccessKeyId": "A", "Expiration": "2999-01-01T00:00:00Z"})
    )
    code, stdout, _ = run("check", "--output-dir", str(tmp_path))
    assert code == 0 and "2999-01-01" in stdout


def test_credential_process_names_a_missing_certificate_file():
    code, stdout, stderr = run("credential-process", *ARGS)
    assert code == 1 and stdout == ""
    assert "/nonexistent/tls.crt, /nonexistent/tls.key: no such file" in stderr


def test_credential_process_rejects_arns_of_different_regions():
    args = [a.replace("eu-west-1:123456789012:profile", "us-east-1:123456789012:profile") for a in ARGS]
    code, _, stderr = run("credential-process", *args)
    assert code == 1 and "both must be in the region" in stderr


def test_serve_refuses_to_start_with_a_bad_configuration(tmp_path):
    args = [a.replace("eu-west-1:123456789012:profile", "us-east-1:123456789012:profile") for a in ARGS]
    code, _, stderr = run("serve", *args, "--output-dir", str(tmp_path), "--log-format", "json")
    assert code == 1
    line = json.loads(stderr.splitlines()[-1])
    assert line["level"] == "error" and "cannot start" in line["message"] and "region" in line["message"]


def test_serve_refuses_to_start_when_its_health_port_is_taken_naming_it(tmp_path):
    """In a pod another container on the same port would leave the probes asking the wrong server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, stderr = run("serve", *ARGS, "--output-dir", str(tmp_path), "--port", "0", "--health-port",
                              str(port), "--log-format", "json")
    assert code == 1
    line = json.loads(stderr.splitlines()[-1])
    assert line["level"] == "error" and line["message"].startswith("cannot start: ")
    assert "health endpoint: cannot listen on " in line["message"] and f":{port}: " in line["message"]


def loaded_modules(statement: str) -> set[str]:
    script = f"import sys\n{statement}\nprint(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return {name.split(".")[0] for name in result.stdout.split()}


def test_the_sidecar_never_imports_kopf_or_the_kubernetes_client():
    modules = loaded_modules("import rolesanywhere_sidecar.cli, rolesanywhere_sidecar.serve")
    assert not modules & {"kopf", "kubernetes", "rolesanywhere_operator"}


def test_check_starts_without_the_protocol_stack():
    """`check` (for scripts and exec probes, which may run it every second) loads no HTTP or X.509 code."""
    modules = loaded_modules(
        "from rolesanywhere_sidecar import cli; cli.main(['check', '--output-dir', '/nonexistent'])"
    )
    assert not modules & {"httpx", "cryptography", "http"}


def test_a_second_signal_during_shutdown_exits_at_once(tmp_path):
    """Ctrl-C followed by SIGTERM (a pod runner or a shell passing both on) ends the process promptly."""
    sidecar = str(Path(sys.executable).with_name("rolesanywhere-sidecar"))
    server = subprocess.Popen([sidecar, "serve", *ARGS, "--output-dir", str(tmp_path), "--port", "0", "--health-port", "0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        # Once it waits for the certificate files, its signal handlers are installed.
        while "waiting for the certificate files" not in server.stderr.readline():
            assert server.poll() is None, "the sidecar exited before waiting for its certificate"
        server.send_signal(signal.SIGINT)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=5)
    finally:
        server.kill()
    rest = server.stderr.read()
    assert code in (0, 128 + signal.SIGTERM, 128 + signal.SIGINT)
    assert "race condition" not in rest and "Traceback" not in rest


def test_check_reads_the_credentials_directory_when_one_is_set(tmp_path):
    private = tmp_path / "sidecar-only"
    private.mkdir()
    (private / "credentials.json").write_text(json.dumps({"AccessKeyId": "A", "Expiration": "2999-01-01T00:00:00Z"}))
    code, _, _ = run("check", "--output-dir", str(tmp_path / "shared"), "--credentials-dir", str(private))
    assert code == 0
