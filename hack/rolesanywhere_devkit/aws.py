"""Real stand-ins for AWS in tests: a moto server with IAM authentication on, and the Roles Anywhere emulator.

Fixtures (register them with `pytest_plugins = ["rolesanywhere_devkit.aws"]` or import them):
  moto_server      session: a moto server; `.admin` keys for setup, `.create_role(...)`, `.client(...)`
  rolesanywhere_ca session: a root CA and an intermediate CA for workload certificates
  emulator_factory session: start_emulator(**options) -> EmulatorProcess; all are stopped at the end
  rolesanywhere    session: a running emulator trusting rolesanywhere_ca, with one profile allowing an
                   S3 read-only role; `.issue(...)` mints workload certificates, `.write(...)` writes them

moto's IAM authentication is switched on by INITIAL_NO_AUTH_ACTION_COUNT: the first
BOOTSTRAP_ACTIONS calls (creating the admin user and its key) run unauthenticated, every later call
must be signed by a known key and is checked against that identity's policies.

moto's request recorder (MotoServer.recording) shows what a call sent, where moto keeps no trace of
it (e.g. AssumeRole's PolicyArns, which moto ignores).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import boto3
import httpx
import yaml
from botocore.config import Config
from localcluster import pki
from rolesanywhere_protocol.clock import utc_now

from rolesanywhere_devkit.processes import terminate

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
#: Unauthenticated calls moto allows before it checks signatures: CreateUser, PutUserPolicy, CreateAccessKey.
BOOTSTRAP_ACTIONS = 3
STARTUP_TIMEOUT = 30.0

ROLES_ANYWHERE_ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
S3_READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation"],
            "Resource": "*",
        }
    ],
}
_EMULATOR_USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "iam:GetRole"], "Resource": "*"}],
}
_ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class AwsKeys:
    access_key_id: str
    secret_access_key: str
    arn: str = ""

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


class _Process:
    """A child process whose output lines are collected on a thread (so a full pipe never blocks it)."""

    def __init__(self, args: list[str], env: dict[str, str], name: str):
        self.name = name
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        threading.Thread(target=self._pump, daemon=True, name=f"{name}-output").start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            self.lines.put(line)

    def wait_for_line(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None and self.lines.empty():
                break
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            match = pattern.search(line)
            if match:
                return match
        self.stop()
        raise RuntimeError(f"{self.name} did not start; its output:\n" + "\n".join(self.output[-40:]))

    def stop(self) -> int:
        """Terminate (then kill, if need be) the process; its exit code."""
        return terminate(self.process)


#: Where the stand-ins listen unless told otherwise: the loopback, which only host processes reach.
LOOPBACK = "127.0.0.1"


class MotoServer:
    """A moto server process with IAM authentication on, on 127.0.0.1 or `host` (e.g. the local node's
    address, where pods reach it)."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self._recording_dir = tempfile.TemporaryDirectory(prefix="moto-recording-")
        env = {
            **os.environ,
            "INITIAL_NO_AUTH_ACTION_COUNT": str(BOOTSTRAP_ACTIONS),
            "MOTO_PORT": "0",
            "MOTO_RECORDER_FILEPATH": str(Path(self._recording_dir.name) / "requests.jsonl"),
        }
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(name, None)
        self._process = _Process(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", "0"], env, "moto server"
        )
        match = self._process.wait_for_line(
            re.compile(rf"Running on (http://{re.escape(host)}:\d+)"), STARTUP_TIMEOUT
        )
        self.endpoint = match.group(1)
        self.admin = self._bootstrap_admin()
        self.emulator_user = self.create_user("rolesanywhere-emulator", _EMULATOR_USER_POLICY)

    def stop(self) -> None:
        self._process.stop()
        self._recording_dir.cleanup()

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[dict[str, list[str]]]]:
        """Record the Query-protocol requests moto receives in the block: the yielded list is filled,
        when the block ends, with each request's form parameters (e.g. {"Action": ["AssumeRole"]})."""
        recorder = self.endpoint + "/moto-api/recorder"
        httpx.post(recorder + "/reset-recording", timeout=10).raise_for_status()
        httpx.post(recorder + "/start-recording", timeout=10).raise_for_status()
        requests: list[dict[str, list[str]]] = []
        try:
            yield requests
        finally:
            httpx.post(recorder + "/stop-recording", timeout=10).raise_for_status()
        download = httpx.get(recorder + "/download-recording", timeout=10)
        download.raise_for_status()
        for line in download.text.splitlines():
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            requests.append(parse_qs(body))

    def client(self, service: str, keys: AwsKeys | None = None, session_token: str | None = None):
        keys = keys or self.admin
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            aws_session_token=session_token,
            config=Config(retries={"max_attempts": 1}),
        )

    def client_for_session(
        self, service: str, access_key_id: str, secret_access_key: str, session_token: str
    ):
        """A client using temporary credentials (e.g. what CreateSession returned)."""
        return self.client(service, AwsKeys(access_key_id, secret_access_key), session_token)

    def _bootstrap_admin(self) -> AwsKeys:
        iam = self.client("iam", AwsKeys("bootstrap", "bootstrap"))  # unchecked: within BOOTSTRAP_ACTIONS
        user = iam.create_user(UserName="admin")["User"]
        iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(_ADMIN_POLICY))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        return AwsKeys(key["AccessKeyId"], key["SecretAccessKey"], user["Arn"])

    def create_user(self, name: str, policy: dict) -> AwsKeys:
        iam = self.client("iam")
        user = iam.create_user(UserName=name)["User"]
        iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return AwsKeys(key["AccessKeyId"], key["SecretAccessKey"], user["Arn"])

    def trust_policy(self, *, roles_anywhere: bool = True, conditions: dict | None = None) -> dict:
        """A role trust policy for Roles Anywhere, as the emulator needs it.

        Both principals are in one statement: rolesanywhere.amazonaws.com for the emulator's check,
        and the emulator's IAM user, because moto's AssumeRole checks its caller against the trust
        policy (and rejects a statement whose principals do not include the caller).
        """
        principal: dict = {"AWS": self.emulator_user.arn}
        if roles_anywhere:
            principal["Service"] = "rolesanywhere.amazonaws.com"
        statement = {"Effect": "Allow", "Principal": principal, "Action": ROLES_ANYWHERE_ACTIONS}
        if conditions:
            statement["Condition"] = conditions
        return {"Version": "2012-10-17", "Statement": [statement]}

    def create_role(
        self,
        name: str,
        policy: dict,
        *,
        trust_policy: dict | None = None,
        max_session_duration: int = 3600,
    ) -> str:
        """Create a role with an inline policy, trusted by Roles Anywhere (see trust_policy); its ARN."""
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust_policy or self.trust_policy()),
            MaxSessionDuration=max_session_duration,
        )["Role"]
        iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        return role["Arn"]


@dataclass
class CertificateAuthorities:
    root: pki.Issued
    intermediate: pki.Issued
    bundle_path: Path  # the root, as a trust anchor's CA bundle


class EmulatorProcess:
    """`rolesanywhere-emulator` running from a generated config; `.url` to call it, debug helpers below."""

    def __init__(
        self,
        config_path: Path,
        env: dict[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
        *,
        port: int = 0,
        host: str = LOOPBACK,
    ):
        """`port`: 0 for a free one; an earlier emulator's, to start it again where its clients call.
        `host`: the address to listen on (the local node's, for pods to reach it)."""
        executable = Path(sys.executable).parent / "rolesanywhere-emulator"
        args = [str(executable), "--config", str(config_path), "--host", host, "--port", str(port),
                "--log-level", "INFO"]
        if tls:
            args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.config_path = config_path
        self._process = _Process(args, {**os.environ, **(env or {})}, "rolesanywhere-emulator")
        match = self._process.wait_for_line(re.compile(r"listening on (https?://\S+)"), STARTUP_TIMEOUT)
        self.url = match.group(1)

    @classmethod
    def from_document(
        cls, document: dict, directory: Path, tls: tuple[Path, Path] | None = None, *, host: str = LOOPBACK
    ) -> EmulatorProcess:
        """Write `document` (see emulator_config) to directory/emulator.yaml and start an emulator on it."""
        directory.mkdir(parents=True, exist_ok=True)
        config_path = directory / "emulator.yaml"
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return cls(config_path, tls=tls, host=host)

    @property
    def output(self) -> list[str]:
        return list(self._process.output)

    def stop(self) -> int:
        """Stop the emulator (SIGTERM); its exit code (0 for a clean stop)."""
        return self._process.stop()

    def _debug(self, method: str, path: str, **kwargs) -> dict:
        response = httpx.request(method, self.url + path, verify=False, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def sessions(self) -> list[dict]:
        """Every CreateSession answer so far (status, code, reason, serialNumber, subject, ARNs...)."""
        return self._debug("GET", "/_emulator/sessions")["sessions"]

    def clear_sessions(self) -> None:
        self._debug("DELETE", "/_emulator/sessions")

    def inject_fault(
        self,
        status: int = 503,
        count: int = 1,
        code: str = "ServiceUnavailableException",
        message: str = "Service unavailable (injected)",
    ) -> None:
        """Answer the next `count` CreateSession requests with this error."""
        self._debug(
            "POST",
            "/_emulator/faults",
            json={"status": status, "count": count, "code": code, "message": message},
        )

    def clear_faults(self) -> None:
        self._debug("DELETE", "/_emulator/faults")


@dataclass
class RolesAnywhere:
    """A running emulator with one trust anchor and one profile, and the moto server behind it."""

    moto: MotoServer
    emulator: EmulatorProcess
    authorities: CertificateAuthorities
    trust_anchor_arn: str
    profile_arn: str
    role_arn: str  # S3 read-only
    document: dict = field(default_factory=dict)  # the emulator's configuration, to start variants from

    @property
    def endpoint(self) -> str:
        return self.emulator.url

    def issue(
        self,
        common_name: str,
        *,
        key_kind: str = "ec-p256",
        via_intermediate: bool = False,
        now: dt.datetime | None = None,
        **options,
    ) -> pki.Issued:
        """A workload certificate from the root CA (or from the intermediate, chain included)."""
        issuer = self.authorities.intermediate if via_intermediate else self.authorities.root
        return pki.issue(
            common_name, now=now or utc_now(), issuer=issuer, key_kind=key_kind, client=True, **options
        )

    def write(
        self, issued: pki.Issued, directory: Path, stem: str = "workload"
    ) -> tuple[Path, Path, Path | None]:
        """Write certificate, key and (if any) intermediates; returns their paths."""
        cert_path, key_path = issued.write(directory, stem)
        chain_path = None
        if issued.chain:
            chain_path = directory / f"{stem}-chain.pem"
            chain_path.write_bytes(issued.chain_pem)
        return cert_path, key_path, chain_path


def make_authorities(directory: Path) -> CertificateAuthorities:
    now = utc_now()
    root = pki.issue(
        "Test Roles Anywhere Root CA",
        now=now,
        is_ca=True,
        key_kind="ec-p384",
        valid_for=dt.timedelta(days=30),
    )
    intermediate = pki.issue(
        "Test Roles Anywhere Intermediate CA",
        now=now,
        issuer=root,
        is_ca=True,
        key_kind="ec-p256",
        valid_for=dt.timedelta(days=20),
    )
    directory.mkdir(parents=True, exist_ok=True)
    bundle = directory / "trust-anchor.pem"
    bundle.write_bytes(root.cert_pem)
    return CertificateAuthorities(root=root, intermediate=intermediate, bundle_path=bundle)


def arn(kind: str, name: str = "") -> str:
    """A Roles Anywhere ARN in the test account and region (kind: trust-anchor or profile)."""
    return f"arn:aws:rolesanywhere:{REGION}:{ACCOUNT_ID}:{kind}/{name or uuid.uuid4()}"


def emulator_config(
    moto: MotoServer,
    *,
    trust_anchors: list[dict],
    profiles: list[dict],
    credential_lifetime_seconds: int | None = None,
) -> dict:
    """A configuration document (see rolesanywhere_emulator.config) calling `moto` as the emulator user."""
    document = {
        "sts": {
            "endpoint": moto.endpoint,
            "accessKeyId": moto.emulator_user.access_key_id,
            "secretAccessKey": moto.emulator_user.secret_access_key,
        },
        "trustAnchors": trust_anchors,
        "profiles": profiles,
    }
    if credential_lifetime_seconds is not None:
        document["testing"] = {"credentialLifetimeSeconds": credential_lifetime_seconds}
    return document
