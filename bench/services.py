"""The AWS side every figure talks to: a moto server (IAM auth on) and Roles Anywhere emulators.

Built from the dev kit's rolesanywhere_devkit.aws, so the benchmark measures against exactly what the tests
verify. Two emulators share one trust anchor, profile and role: `normal` vends one-hour sessions,
`short_lived` vends sessions of SHORT_LIFETIME seconds so refresh cycles come quickly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from rolesanywhere_devkit.aws import (
    S3_READ_ONLY_POLICY,
    EmulatorProcess,
    MotoServer,
    arn,
    emulator_config,
    make_authorities,
    utc_now,
)
from rolesanywhere_devkit.sidecar import isolated_aws_environment

from .paths import SIDECAR

#: Lifetime (seconds) of the credentials the short-lived emulator vends; our sidecar refreshes them
#: after about half of it, so ten refresh cycles take about ten seconds.
SHORT_LIFETIME = 2


@dataclass(frozen=True)
class Workload:
    """A workload certificate on disk and the ARNs it may use."""

    certificate: Path
    private_key: Path
    trust_anchor_arn: str
    profile_arn: str
    role_arn: str


class AwsStandIns:
    """moto + two emulators + one workload certificate; `stop()` ends every process."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._started: list = []
        self.moto = MotoServer()
        self._started.append(self.moto)
        authorities = make_authorities(directory / "ca")
        self.authorities = authorities  # the trust anchor's CA: figure 8's cert-manager Issuer signs with it
        role_arn = self.moto.create_role(f"bench-{uuid.uuid4().hex[:8]}", S3_READ_ONLY_POLICY)
        trust_anchor_arn, profile_arn = arn("trust-anchor"), arn("profile")
        issued = _issue_workload(authorities)
        cert, key = issued.write(directory, "workload")
        self.workload = Workload(cert, key, trust_anchor_arn, profile_arn, role_arn)

        def start(name: str, lifetime: int | None) -> EmulatorProcess:
            document = emulator_config(
                self.moto,
                trust_anchors=[{"arn": trust_anchor_arn, "caBundle": str(authorities.bundle_path)}],
                profiles=[{"arn": profile_arn, "roleArns": [role_arn], "durationSeconds": 3600}],
                credential_lifetime_seconds=lifetime,
            )
            emulator = EmulatorProcess.from_document(document, directory / f"emulator-{name}")
            self._started.append(emulator)
            return emulator

        self.normal = start("normal", None)
        self.short_lived = start("short-lived", SHORT_LIFETIME)
        self.home = directory / "home"
        self.home.mkdir(exist_ok=True)

    def stop(self) -> None:
        for process in reversed(self._started):
            process.stop()
        self._started.clear()

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment of a measured process: no AWS credentials of this machine leak in."""
        return isolated_aws_environment(self.home, **extra)

    # --- Command lines ------------------------------------------------------------------------------

    def identity_flags(self, endpoint: str) -> list[str]:
        """Flags both tools spell the same way."""
        w = self.workload
        return [
            "--certificate", str(w.certificate), "--private-key", str(w.private_key),
            "--trust-anchor-arn", w.trust_anchor_arn, "--profile-arn", w.profile_arn,
            "--role-arn", w.role_arn, "--endpoint", endpoint,
        ]  # fmt: skip

    def ours(self, command: str, endpoint: str, *extra: str) -> list[str]:
        return [SIDECAR, command, *self.identity_flags(endpoint), *extra]

    def peer(self, helper: Path, command: str, endpoint: str, *extra: str) -> list[str]:
        return [str(helper), command, *self.identity_flags(endpoint), *extra]


def _issue_workload(authorities):
    from localcluster import pki

    return pki.issue(
        "bench-workload", now=utc_now(), issuer=authorities.root, key_kind="ec-p256", client=True
    )
