"""The credentials sidecar end to end: the real sidecar process, the Roles Anywhere emulator, a moto
server with IAM authentication on, and the real boto3 and AWS CLI as its clients."""

from __future__ import annotations

import configparser
import http.client
import json
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from rolesanywhere_devkit.aws import REGION, EmulatorProcess, RolesAnywhere, emulator_config
from rolesanywhere_devkit.processes import free_port, wait_for
from rolesanywhere_devkit.sidecar import SIDECAR, MountedSecret, SidecarProcess, isolated_aws_environment

FAILED = "fetching credentials failed"
SHORT_LIFETIME = 4  # seconds: long-running tests see many expirations in little time
AWS_CLI = str(Path(sys.executable).with_name("aws"))

# A long-running app: ONE S3 client configured only through the environment the operator injects.
# Prints one JSON line per call with the access key id that signed it.
BOTO3_APP = textwrap.dedent(
    """
    import json, re, sys, time
    import boto3
    signed_with = []
    def remember(request, **_):
        header = request.headers.get("Authorization", b"")
        header = header.decode() if isinstance(header, bytes) else header
        signed_with.append(re.search(r"Credential=([^/]+)/", header).group(1))
    s3 = boto3.client("s3")
    s3.meta.events.register("before-send.s3", remember)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        try:
            names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
            print(json.dumps({"ok": True, "key": signed_with[-1], "buckets": names, "at": time.time()}), flush=True)
        except Exception as error:
            print(json.dumps({"ok": False, "error": repr(error), "at": time.time()}), flush=True)
        time.sleep(0.1)  # pacing of the app's own work
    """
)


@pytest.fixture(scope="module")
def bucket(rolesanywhere: RolesAnywhere) -> str:
    name = f"sidecar-{uuid.uuid4().hex[:12]}"
    rolesanywhere.moto.client("s3").create_bucket(Bucket=name)
    return name


def start_emulator(ra: RolesAnywhere, emulator_factory, lifetime: int) -> EmulatorProcess:
    """An emulator with the same trust anchor, profile and role as `ra`, vending short-lived credentials."""
    document = emulator_config(
        ra.moto,
        trust_anchors=[{"arn": ra.trust_anchor_arn, "caBundle": str(ra.authorities.bundle_path)}],
        profiles=[{"arn": ra.profile_arn, "roleArns": [ra.role_arn], "durationSeconds": 3600}],
        credential_lifetime_seconds=lifetime,
    )
    return emulator_factory(document)


@pytest.fixture(scope="module")
def short_lived(rolesanywhere, emulator_factory) -> EmulatorProcess:
    return start_emulator(rolesanywhere, emulator_factory, SHORT_LIFETIME)


@pytest.fixture
def certificate(rolesanywhere, tmp_path) -> MountedSecret:
    """A workload certificate in a Secret-like volume (tls.crt, tls.key)."""
    secret = MountedSecret(tmp_path / "certificate")
    write_certificate(rolesanywhere, secret)
    return secret


def write_certificate(ra: RolesAnywhere, secret: MountedSecret) -> int:
    issued = ra.issue(f"workload-{uuid.uuid4().hex[:6]}")
    secret.write({"tls.crt": issued.cert_pem, "tls.key": issued.key_pem()})
    return issued.cert.serial_number


def identity_args(ra: RolesAnywhere, endpoint: str, secret: MountedSecret) -> list[str]:
    return [
        "--certificate", str(secret.path("tls.crt")),
        "--private-key", str(secret.path("tls.key")),
        "--trust-anchor-arn", ra.trust_anchor_arn,
        "--profile-arn", ra.profile_arn,
        "--role-arn", ra.role_arn,
        "--endpoint", endpoint,
    ]  # fmt: skip


@pytest.fixture
def sidecars(tmp_path):
    """start(endpoint_args, output_dir) -> SidecarProcess; every one is stopped after the test."""
    started: list[SidecarProcess] = []

    def start(args: list[str], output_dir: Path) -> SidecarProcess:
        log_path = tmp_path / f"sidecar-{len(started)}.log"
        sidecar = SidecarProcess(
            ["--health-port", "0", *args, "--output-dir", str(output_dir), "--port", "0"],
            log_path=log_path,
            env=isolated_aws_environment(tmp_path),
        )
        started.append(sidecar.start())
        return sidecar

    yield start
    for sidecar in started:
        sidecar.kill()


class App:
    """The BOTO3_APP in its own process, its output in a file."""

    def __init__(self, tmp_path: Path, environ: dict[str, str], max_seconds: float = 60) -> None:
        self.output_path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.jsonl"
        with self.output_path.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOTO3_APP, str(max_seconds)], env=environ, stdout=output, stderr=output
            )

    def calls(self) -> list[dict]:
        lines = self.output_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def failures(self) -> list[dict]:
        return [call for call in self.calls() if not call["ok"]]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def container_environment(tmp_path: Path, ra: RolesAnywhere, sidecar: SidecarProcess, output: Path):
    """What the operator injects into app containers, with the moto server as the S3 endpoint."""
    return isolated_aws_environment(
        tmp_path,
        AWS_CONTAINER_CREDENTIALS_FULL_URI=f"http://127.0.0.1:{sidecar.port}/v1/credentials",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(output / "token"),
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL_S3=ra.moto.endpoint,
    )


def refreshed(line: dict) -> bool:
    return line["message"] == "credentials refreshed"


def test_a_long_running_boto3_client_works_across_credential_expirations(
    rolesanywhere, short_lived, certificate, sidecars, bucket, tmp_path
):
    output = tmp_path / "out"
    sidecar = sidecars(identity_args(rolesanywhere, short_lived.url, certificate), output)
    sidecar.wait_for_line(refreshed, what="the first credentials")
    app = App(tmp_path, container_environment(tmp_path, rolesanywhere, sidecar, output))
    try:

        def three_expirations_later():
            assert not app.failures(), app.failures()
            calls = app.calls()
            span = calls[-1]["at"] - calls[0]["at"] if calls else 0
            return span > 3 * SHORT_LIFETIME + 1 and len({call["key"] for call in calls}) >= 4

        wait_for(three_expirations_later, timeout=45, interval=0.1, what="the app to see 3 expirations")
    finally:
        app.stop()
    calls = app.calls()
    assert all(bucket in call["buckets"] for call in calls)
    assert not app.failures()
    assert len(sidecar.messages("credentials refreshed")) >= 4


def test_a_session_name_the_profile_does_not_accept_is_reported_with_the_fix(
    rolesanywhere, certificate, sidecars, tmp_path
):
    """A profile with AWS's defaults does not accept role session names: the log says that is why."""
    args = [*identity_args(rolesanywhere, rolesanywhere.endpoint, certificate), "--role-session-name", "ci-job-7"]
    sidecar = sidecars(args, tmp_path / "out")
    failed = sidecar.wait_for_line(lambda line: line["message"].startswith(FAILED), what="the refusal")
    message = failed["message"]
    assert "HTTP 403 AccessDeniedException" in message
    assert "role session name 'ci-job-7' is why" in message
    assert f"profile {rolesanywhere.profile_arn} does not accept role session names" in message
    assert "--accept-role-session-name" in message and "remove spec.roleSessionName" in message
    assert not (tmp_path / "out" / "credentials").exists()  # the probe's credentials are never served


def test_the_aws_cli_uses_the_credentials_file_and_fails_without_it(
    rolesanywhere, certificate, bucket, tmp_path
):
    output = tmp_path / "out"
    environ = isolated_aws_environment(
        tmp_path, AWS_SHARED_CREDENTIALS_FILE=str(output / "credentials"), AWS_DEFAULT_REGION=REGION
    )
    list_buckets = [AWS_CLI, "s3", "ls", "--endpoint-url", rolesanywhere.moto.endpoint]
    before = subprocess.run(
        list_buckets, env=environ, check=False, capture_output=True, text=True, timeout=60
    )
    assert before.returncode != 0 and "Unable to locate credentials" in before.stderr

    once = subprocess.run(
        [SIDECAR, "serve", "--once", *identity_args(rolesanywhere, rolesanywhere.endpoint, certificate)],
        env=isolated_aws_environment(tmp_path, ROLESANYWHERE_OUTPUT_DIR=str(output)),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr
    # No endpoint with --once, so no token.
    assert sorted(p.name for p in output.iterdir()) == ["credentials", "credentials.json"]
    check = subprocess.run(
        [SIDECAR, "check", "--output-dir", str(output)], check=False, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr

    after = subprocess.run(list_buckets, env=environ, check=False, capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stderr
    assert bucket in after.stdout


def test_a_certificate_replaced_on_disk_is_used_by_the_next_create_session(
    rolesanywhere, short_lived, certificate, sidecars, tmp_path
):
    sidecar = sidecars(identity_args(rolesanywhere, short_lived.url, certificate), tmp_path / "out")
    first = sidecar.wait_for_line(refreshed, what="the first credentials")
    new_serial = write_certificate(rolesanywhere, certificate)
    assert f"{new_serial:x}" != first["certificate_serial"]

    sidecar.wait_for_line(
        lambda line: refreshed(line) and line["certificate_serial"] == f"{new_serial:x}",
        what="a refresh with the new certificate",
    )
    answered = [s["status"] for s in short_lived.sessions() if s["serialNumberHex"] == f"{new_serial:x}"]
    assert answered and all(200 <= status < 300 for status in answered)  # the emulator saw the new serial
    assert len(sidecar.messages("starting")) == 1  # the same process, no restart
    sidecar.assert_running()


def test_an_outage_shorter_than_the_credentials_lifetime_is_invisible_to_clients(
    rolesanywhere, emulator_factory, certificate, sidecars, bucket, tmp_path
):
    lifetime = 12  # refreshed after 4.8 to 7.2 s: the outage below spans that and ends before expiry
    emulator = start_emulator(rolesanywhere, emulator_factory, lifetime)
    output = tmp_path / "out"
    sidecar = sidecars(identity_args(rolesanywhere, emulator.url, certificate), output)
    sidecar.wait_for_line(refreshed, what="the first credentials")
    app = App(tmp_path, container_environment(tmp_path, rolesanywhere, sidecar, output))
    restarted = None
    try:
        wait_for(app.calls, timeout=20, interval=0.05, what="the app's first call")
        emulator.stop()
        down_at = time.time()

        def failed_twice():
            failures = sidecar.messages(FAILED)
            return len(failures) >= 2 and failures

        failures = wait_for(failed_twice, timeout=20, interval=0.05, what="two failed refreshes")
        port = int(emulator.url.rsplit(":", 1)[1])
        restarted = EmulatorProcess(emulator.config_path, isolated_aws_environment(tmp_path), port=port)
        up_at = time.time()
        recovered = sidecar.wait_for_line(
            lambda line: refreshed(line) and line.get("failed_attempts_before", 0) >= 2,
            what="recovery after the outage",
        )
        wait_for(lambda: app.calls()[-1]["at"] > up_at, timeout=10, interval=0.05, what="a later call")
    finally:
        app.stop()
        if restarted:
            restarted.stop()
    assert "ConnectError" in failures[0]["message"]
    assert failures[0]["serving"].startswith("last good credentials")
    assert not app.failures(), app.failures()
    assert any(down_at < call["at"] < up_at for call in app.calls())  # the app kept working meanwhile
    assert recovered["failed_attempts_before"] >= 2
    assert not sidecar.messages("the served credentials have expired")


def secret_values(output: Path, certificate: MountedSecret) -> list[str]:
    """The secret key, session token, endpoint token and the private key's base64 lines."""
    document = json.loads((output / "credentials.json").read_text())
    key_pem = certificate.path("tls.key").read_text()
    key_lines = [line for line in key_pem.splitlines() if line and not line.startswith("-----")]
    return [document["SecretAccessKey"], document["SessionToken"], (output / "token").read_text(), *key_lines]


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_endpoint_needs_the_token_and_no_secret_reaches_the_logs(rolesanywhere, sidecars, tmp_path):
    """Debug level, through waiting for the certificate, a failed call, 401s, success and SIGTERM."""
    secret = MountedSecret(tmp_path / "certificate")
    output = tmp_path / "out"
    rolesanywhere.emulator.inject_fault(503, count=1, message="injected outage for the sidecar test")
    try:
        sidecar = sidecars(identity_args(rolesanywhere, rolesanywhere.endpoint, secret), output)
        sidecar.wait_for_line(lambda line: line["message"].startswith("waiting for the cert"), what="waiting")
        write_certificate(rolesanywhere, secret)
        sidecar.wait_for_line(refreshed, what="credentials after the injected failure")
    finally:
        rolesanywhere.emulator.clear_faults()
    [failure] = sidecar.messages(FAILED)
    assert "injected outage for the sidecar test" in failure["message"]  # the service's own message

    token = (output / "token").read_text()
    assert get(sidecar.port, "/v1/credentials", {})[0] == 401
    assert get(sidecar.port, "/v1/credentials", {"Authorization": token[:-1]})[0] == 401
    status, body = get(sidecar.port, "/v1/credentials", {"Authorization": token})
    assert status == 200
    served = json.loads(body)
    on_disk = json.loads((output / "credentials.json").read_text())
    assert (served["AccessKeyId"], served["Token"]) == (on_disk["AccessKeyId"], on_disk["SessionToken"])
    assert get(sidecar.port, "/readyz", {})[0] == 200
    _, metrics = get(sidecar.port, "/metrics", {})
    assert 'rolesanywhere_sidecar_create_session_total{outcome="service_error"} 1' in metrics.decode()

    started = time.monotonic()
    assert sidecar.terminate() == 0
    assert time.monotonic() - started < 3  # prompt, even on a busy machine
    assert sorted(p.name for p in output.iterdir()) == ["credentials", "credentials.json", "token"]
    ini = configparser.ConfigParser()
    ini.read(output / "credentials")
    assert ini["default"]["aws_access_key_id"] == on_disk["AccessKeyId"]

    log = sidecar.output()
    assert "debug" in {line["level"] for line in sidecar.lines()}
    for value in secret_values(output, secret):
        assert value not in log


def test_the_health_port_passes_the_probes_once_credentials_exist_and_never_hands_them_out(
    rolesanywhere, sidecars, tmp_path
):
    """What the injected sidecar's startupProbe and readinessProbe ask (httpGet /readyz on the health port,
    every address of the pod): 503 until the first credentials, 200 once they are served and written;
    credentials stay on the loopback endpoint, for the token only, whatever reaches the health port."""
    secret = MountedSecret(tmp_path / "certificate")
    output = tmp_path / "out"
    health_port = free_port()
    sidecar = sidecars([*identity_args(rolesanywhere, rolesanywhere.endpoint, secret), "--health-port",
                        str(health_port)], output)
    sidecar.wait_for_line(lambda line: line["message"].startswith("waiting for the cert"), what="waiting")
    [listening] = sidecar.messages("health endpoint listening")
    assert listening["paths"] == ["/healthz", "/readyz", "/metrics"]
    assert get(health_port, "/healthz", {}) == (200, b"ok\n")
    assert get(health_port, "/readyz", {}) == (503, b"no credentials yet\n")

    write_certificate(rolesanywhere, secret)
    wait_for(lambda: get(health_port, "/readyz", {})[0] == 200, timeout=20, what="/readyz on the health port")
    assert (output / "credentials.json").exists()  # the files are written before /readyz passes
    token = (output / "token").read_text()
    assert get(sidecar.port, "/v1/credentials", {"Authorization": token})[0] == 200
    for path in ("/v1/credentials", "/v1/credentials?refresh=1", "/"):
        status, body = get(health_port, path, {"Authorization": token})
        assert status == 404 and b"AccessKeyId" not in body, path
    status, metrics = get(health_port, "/metrics", {})
    assert status == 200
    assert 'rolesanywhere_sidecar_create_session_total{outcome="success"} 1' in metrics.decode()
    for value in secret_values(output, secret):
        assert value not in metrics.decode()
    assert sidecar.terminate() == 0


def test_credential_process_output_is_accepted_by_botocore(rolesanywhere, certificate, bucket, tmp_path):
    arguments = identity_args(rolesanywhere, rolesanywhere.endpoint, certificate)
    command = " ".join([SIDECAR, "credential-process", *arguments])
    config = tmp_path / "aws-config"
    config.write_text(f"[profile roles-anywhere]\ncredential_process = {command}\nregion = {REGION}\n")
    script = textwrap.dedent(
        """
        import json, sys, boto3
        session = boto3.Session(profile_name="roles-anywhere")
        s3 = session.client("s3", endpoint_url=sys.argv[1])
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        credentials = session.get_credentials()
        print(json.dumps({"method": credentials.method, "key": credentials.access_key, "buckets": names}))
        """
    )
    environ = isolated_aws_environment(tmp_path, AWS_CONFIG_FILE=str(config))
    result = subprocess.run(
        [sys.executable, "-c", script, rolesanywhere.moto.endpoint], env=environ, check=False,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["method"] == "custom-process" and bucket in outcome["buckets"]

    direct = subprocess.run(
        command.split(), env=environ, check=True, capture_output=True, text=True, timeout=60
    )
    document = json.loads(direct.stdout)
    assert set(document) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert document["Version"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["Expiration"])
    assert document["SecretAccessKey"] not in direct.stderr and document["SessionToken"] not in direct.stderr


def test_a_restarted_sidecar_serves_the_last_credentials_while_the_service_is_unreachable(
    rolesanywhere, certificate, sidecars, tmp_path
):
    output = tmp_path / "out"
    first = sidecars(identity_args(rolesanywhere, rolesanywhere.endpoint, certificate), output)
    fetched = first.wait_for_line(refreshed, what="the first credentials")
    first.kill()  # as an OOM kill would

    unreachable = f"http://127.0.0.1:{free_port()}"
    second = sidecars(identity_args(rolesanywhere, unreachable, certificate), output)
    second.wait_for_line(lambda line: line["message"].startswith(FAILED), what="a failed refresh")
    assert second.messages("serving the credentials of the previous run")
    status, body = get(second.port, "/v1/credentials", {"Authorization": (output / "token").read_text()})
    assert status == 200 and json.loads(body)["AccessKeyId"] == fetched["access_key_id"]


def test_an_encrypted_private_key_is_read_with_the_passphrase_file(rolesanywhere, tmp_path):
    issued = rolesanywhere.issue("encrypted-key-workload")
    secret = MountedSecret(tmp_path / "certificate")
    # Secrets created from files often end with a newline that is not part of the passphrase.
    secret.write(
        {"tls.crt": issued.cert_pem, "tls.key": issued.key_pem(passphrase=b"s3cret"), "pass": b"s3cret\n"}
    )
    output = tmp_path / "out"
    once = subprocess.run(
        [SIDECAR, "serve", "--once", *identity_args(rolesanywhere, rolesanywhere.endpoint, secret)],
        env=isolated_aws_environment(
            tmp_path,
            ROLESANYWHERE_OUTPUT_DIR=str(output),
            ROLESANYWHERE_PRIVATE_KEY_PASSPHRASE_FILE=str(secret.path("pass")),
        ),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr
    assert json.loads((output / "credentials.json").read_text())["AccessKeyId"]
    assert "s3cret" not in once.stderr
