"""Helpers for testing the sidecar: run it as a real process and read its JSON log lines, keep AWS
credentials of the test machine out of child processes, and update a Secret-like volume the way the
kubelet does."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rolesanywhere_sidecar.logs import LOGGER_NAME

from rolesanywhere_devkit.processes import wait_for

SIDECAR = str(Path(sys.executable).with_name("rolesanywhere-sidecar"))

#: Environment variables that could hand a process AWS credentials behind the test's back.
AWS_CREDENTIAL_SOURCES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


def reset_sidecar_logging() -> None:
    """Undo rolesanywhere_sidecar.logs.configure() (which a test may call through the CLI)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def isolated_aws_environment(home: Path, **extra: str) -> dict[str, str]:
    """os.environ without any AWS credential source, with no config files and no instance metadata."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in AWS_CREDENTIAL_SOURCES and not k.startswith("ROLESANYWHERE_")
    }
    environ.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    environ.update(extra)
    return environ


class SidecarProcess:
    """`rolesanywhere-sidecar serve ...` logging JSON at debug level into `log_path`."""

    def __init__(self, args: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = [SIDECAR, "serve", *args, "--log-format", "json", "--log-level", "debug"]
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> SidecarProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def lines(self) -> list[dict]:
        """The JSON log lines so far; anything else in the output fails the test (a traceback, a print)."""
        parsed = []
        for line in self.output().splitlines():
            try:
                parsed.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON log line: {line!r}\n{self.output()}") from None
        return parsed

    def wait_for_line(self, matches: Callable[[dict], bool], *, what: str, timeout: float = 20) -> dict:
        def found():
            self.assert_running()
            return next((line for line in self.lines() if matches(line)), None)

        return wait_for(found, timeout=timeout, interval=0.05, what=what)

    def messages(self, prefix: str) -> list[dict]:
        """The log lines whose message starts with `prefix`."""
        return [line for line in self.lines() if line["message"].startswith(prefix)]

    @property
    def port(self) -> int:
        line = self.wait_for_line(
            lambda line: line["message"] == "credentials endpoint listening", what="listening"
        )
        return int(line["url"].rsplit(":", 1)[1].split("/", 1)[0])

    def assert_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            f"the sidecar exited with {self.process.returncode}:\n{self.output()}"
        )

    def terminate(self, timeout: float = 5) -> int:
        """SIGTERM, and the exit code once it is gone (it must go within `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class MountedSecret:
    """A directory laid out like a Secret volume, updated the way the kubelet does it.

    Files are written into a fresh timestamped directory, then the `..data` symlink is switched to it
    with one rename, and each key is a symlink through `..data`: readers never see a mix of versions.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.version = 0

    def path(self, key: str) -> Path:
        return self.directory / key

    def write(self, files: dict[str, bytes]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.version += 1
        payload = self.directory / f"..{self.version:04d}_{os.getpid()}"
        payload.mkdir()
        for key, data in files.items():
            (payload / key).write_bytes(data)
        staging = self.directory / "..data_tmp"
        staging.symlink_to(payload.name)
        staging.rename(self.directory / "..data")
        for key in files:
            if not self.path(key).is_symlink():
                self.path(key).symlink_to(f"..data/{key}")
