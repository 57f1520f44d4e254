"""The emulator's YAML configuration: a valid file loads; each mistake is named with its place in the file."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from localcluster import pki
from rolesanywhere_sidecar.emulator.cli import main
from rolesanywhere_sidecar.emulator.config import load_config
from rolesanywhere_sidecar.protocol import ConfigError

ANCHOR = "arn:aws:rolesanywhere:eu-central-1:123456789012:trust-anchor/ta-1"
PROFILE = "arn:aws:rolesanywhere:eu-central-1:123456789012:profile/p-1"
ROLE = "arn:aws:iam::123456789012:role/app"


@pytest.fixture(scope="module")
def ca_pem():
    return pki.issue("Config Test CA", now=dt.datetime.now(dt.UTC), is_ca=True).cert_pem


def document(**changes) -> dict:
    base = {
        "sts": {"endpoint": "http://127.0.0.1:5000", "accessKeyId": "AKIA", "secretAccessKey": "secret"},
        "trustAnchors": [{"arn": ANCHOR, "caBundle": "ca.pem"}],
        "profiles": [
            {"arn": PROFILE, "roleArns": [ROLE], "durationSeconds": 1800, "acceptRoleSessionName": True}
        ],
    }
    base.update(changes)
    return base


def write(tmp_path, ca_pem, content: dict):
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    path = tmp_path / "emulator.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_valid_configuration(tmp_path, ca_pem):
    config = load_config(
        write(tmp_path, ca_pem, document(testing={"credentialLifetimeSeconds": 5})), environ={}
    )

    assert (config.account_id, config.region, config.partition) == ("123456789012", "eu-central-1", "aws")
    assert config.trust_anchors[ANCHOR].certificates[0].subject.rfc4514_string() == "CN=Config Test CA"
    profile = config.profiles[PROFILE]
    assert (
        profile.role_arns,
        profile.duration_seconds,
        profile.accept_role_session_name,
        profile.enabled,
    ) == ((ROLE,), 1800, True, True)
    assert config.sts.iam_endpoint == "http://127.0.0.1:5000" and config.sts.region == "us-east-1"
    assert config.credential_lifetime_seconds == 5
    assert "secret" not in repr(config.sts)


def test_sts_credentials_may_come_from_the_environment(tmp_path, ca_pem):
    content = document(sts={"endpoint": "http://127.0.0.1:5000"})
    config = load_config(
        write(tmp_path, ca_pem, content),
        environ={"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    assert config.sts.access_key_id == "AKIAENV"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trustAnchors": [{"arn": ANCHOR}]}, r"trustAnchors\[0\].caBundle is missing"),
        (
            {"trustAnchors": [{"arn": ANCHOR, "caBundle": "absent.pem"}]},
            r"trustAnchors\[0\].caBundle: cannot read",
        ),
        (
            {"trustAnchors": [{"arn": PROFILE, "caBundle": "ca.pem"}]},
            r"trustAnchors\[0\].arn: .*not a trust-anchor ARN",
        ),
        (
            {"profiles": [{"arn": PROFILE, "roleArns": []}]},
            r"profiles\[0\].roleArns must be a non-empty list",
        ),
        (
            {"profiles": [{"arn": PROFILE, "roleArns": ["arn:aws:iam::123456789012:user/u"]}]},
            r"roleArns\[0\]: .*not a role",
        ),
        (
            {"profiles": [{"arn": PROFILE, "roleArns": [ROLE], "durationSeconds": 60}]},
            "durationSeconds must be .* 900 to 43200",
        ),
        (
            {"profiles": [{"arn": PROFILE.replace("eu-central-1", "us-east-1"), "roleArns": [ROLE]}]},
            "must share both",
        ),
        (
            {"profiles": [{"arn": PROFILE, "roleArns": [ROLE], "enabled": "yes"}]},
            r"profiles\[0\].enabled must be true or false",
        ),
        (
            {"sts": {"endpoint": "127.0.0.1:5000", "accessKeyId": "a", "secretAccessKey": "b"}},
            "sts.endpoint must be an http",
        ),
        ({"sts": {"endpoint": "http://127.0.0.1:5000"}}, "no credentials to call STS with"),
        ({"testing": {"credentialLifetimeSeconds": 0}}, "credentialLifetimeSeconds must be a positive"),
        ({"profiles": []}, "at least one entry is needed"),
    ],
)
def test_invalid_configuration_names_the_file_and_the_field(tmp_path, ca_pem, changes, message):
    path = write(tmp_path, ca_pem, document(**changes))
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, environ={})
    assert str(caught.value).startswith(f"emulator configuration {path}: ")


def test_not_yaml(tmp_path):
    path = tmp_path / "emulator.yaml"
    path.write_text("trustAnchors: [\n")
    with pytest.raises(ConfigError, match=f"emulator configuration {path} is not valid YAML"):
        load_config(path, environ={})


def test_cli_reports_a_bad_configuration_and_exits_2(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "absent.yaml"), "--port", "0"]) == 2
    assert "cannot read emulator configuration" in capsys.readouterr().err


def test_cli_needs_the_tls_certificate_and_key_together(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "absent.yaml"), "--tls-cert", str(tmp_path / "server.crt")]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
