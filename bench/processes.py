"""Long-running processes under measurement: our `serve` and `aws_signing_helper serve`.

Each logs to a file (never a pipe that could fill up), may be pinned to CPUs, and is stopped by
`stop()` (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

from rolesanywhere_devkit.processes import free_port, terminate, wait_for

from .services import AwsStandIns

START_TIMEOUT = 30
_PEER_PORT = re.compile(r"Local server started on port: (\d+)")


class Background:
    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path, cpus: set[int] | None = None):
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            # taskset execs the command: same pid, and every thread it starts stays on `cpus`.
            pinned = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
            self.process = subprocess.Popen(
                [*pinned, *args], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.log_path.stem} exited {self.process.returncode}: {self.log()[-1500:]}")

    def stop(self) -> None:
        terminate(self.process)


class OurServe(Background):
    """`rolesanywhere-sidecar serve` on a free port, logging JSON."""

    def __init__(self, aws: AwsStandIns, endpoint: str, directory: Path, *, cpus: set[int] | None = None):
        self.output_dir = directory / "credentials"
        self.health_port = free_port()  # its health listener (/healthz, /readyz, /metrics), as in a pod
        args = aws.ours("serve", endpoint, "--port", "0", "--health-port", str(self.health_port),
                        "--output-dir", str(self.output_dir), "--log-format", "json")  # fmt: skip
        super().__init__(args, env=aws.environment(), log_path=directory / "ours-serve.log", cpus=cpus)

    def messages(self, message: str) -> list[dict]:
        found = []
        for line in self.log().splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if document.get("message") == message:
                found.append(document)
        return found

    def refreshes(self) -> int:
        """How many sets of credentials it has published so far (the first fetch included)."""
        return len(self.messages("credentials refreshed"))

    def wait_until_serving(self) -> int:
        """Wait for the first credentials and the endpoint; its port."""

        def ready():
            self.assert_running()
            listening = self.messages("credentials endpoint listening")
            return listening if listening and self.refreshes() else None

        url = wait_for(ready, timeout=START_TIMEOUT, interval=0.02, what="our serve's first credentials")[0][
            "url"
        ]
        return int(url.rsplit(":", 1)[1].split("/", 1)[0])

    def token(self) -> str:
        return (self.output_dir / "token").read_text()


class PeerServe(Background):
    """`aws_signing_helper serve` on a free port; its endpoint speaks the IMDSv2 protocol."""

    def __init__(
        self, aws: AwsStandIns, helper: Path, endpoint: str, directory: Path, *, cpus: set[int] | None = None
    ):
        args = aws.peer(helper, "serve", endpoint, "--port", "0")
        super().__init__(args, env=aws.environment(), log_path=directory / "peer-serve.log", cpus=cpus)
        self.role_name = aws.workload.role_arn.rsplit("/", 1)[1]
        self.port = 0
        self.imds_token = ""

    @property
    def credentials_path(self) -> str:
        return f"/latest/meta-data/iam/security-credentials/{self.role_name}"

    def wait_until_serving(self) -> int:
        """It fetches credentials before it listens; wait for the port, then take an IMDSv2 session token."""

        def port():
            self.assert_running()
            match = _PEER_PORT.search(self.log())
            return int(match.group(1)) if match else None

        self.port = wait_for(
            port, timeout=START_TIMEOUT, interval=0.02, what="aws_signing_helper serve's port"
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/latest/api/token", method="PUT",
            headers={"x-aws-ec2-metadata-token-ttl-seconds": "21600"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            self.imds_token = response.read().decode()
        return self.port

    def get_credentials(self) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{self.credentials_path}",
            headers={"x-aws-ec2-metadata-token": self.imds_token},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
