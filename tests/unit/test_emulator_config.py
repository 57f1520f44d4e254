"""The emulator's YAML configuration: a valid file loads; each mistake is named with its place in the file."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from localcluster import pki
from rolesanywhere_emulator.cli import main
from rolesanywhere_emulator.config import load_config
from rolesanywhere_protocol import ConfigError

ANCHOR = "arn:aws:rolesanywhere:eu-central-1:123456789012:trust-anchor/ta-1"
PROFILE = "arn:aws:rolesanywhere:eu-central-1:123456789012:profile/p-1"
ROLE = "arn:aws:iam::123456789012:role/app"


@pytest.fixture(scope="module")
def ca():
    return pki.issue("Config Test CA", now=dt.datetime.now(dt.UTC), is_ca=True)


@pytest.fixture(scope="module")
def ca_pem(ca):
    return ca.cert_pem


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


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"acountId": "123456789012"}, r"the document: unknown key 'acountId'; expected one of accountId, "),
        (
            {"sts": {"endpoint": "http://127.0.0.1:5000", "accessKeyId": "a", "secretAccessKey": "b", "regoin": "x"}},
            r"sts: unknown key 'regoin'; expected one of endpoint, ",
        ),
        (
            {"trustAnchors": [{"arn": ANCHOR, "caBundle": "ca.pem", "sourceType": "CERTIFICATE_BUNDLE"}]},
            r"trustAnchors\[0\]: unknown key 'sourceType'; expected one of arn, caBundle, crls, enabled",
        ),
        (
            {"profiles": [{"arn": PROFILE, "roleArns": [ROLE], "sesionPolicy": "{}"}]},
            r"profiles\[0\]: unknown key 'sesionPolicy'; expected one of arn, roleArns, ",
        ),
        (
            {"profiles": [{"arn": PROFILE, "roleArns": [ROLE], "attributeMappings": []}]},
            r"profiles\[0\]: unknown key 'attributeMappings'",
        ),
        ({"testing": {"credentialLifetime": 5}}, r"testing: unknown key 'credentialLifetime'"),
    ],
    ids=["root", "sts", "trust-anchor", "profile-misspelt", "profile-unsupported", "testing"],
)
def test_unknown_keys_are_errors_naming_the_key_and_its_place(tmp_path, ca_pem, changes, message):
    """A key the emulator does not implement must not be ignored: the emulator would then be more
    permissive than the service (e.g. a misspelt session policy would grant the role's full rights)."""
    path = write(tmp_path, ca_pem, document(**changes))
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})



@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_trust_anchor_crls_load_from_pem_or_der_relative_to_the_file(tmp_path, ca, ca_pem, encoding):
    (tmp_path / "crls").mkdir()
    (tmp_path / "crls" / "ca.crl").write_bytes(pki.revocation_list(ca, 1234).public_bytes(encoding))
    anchor = {"arn": ANCHOR, "caBundle": "ca.pem", "crls": ["crls/ca.crl"]}
    config = load_config(write(tmp_path, ca_pem, document(trustAnchors=[anchor])), environ={})
    (crl,) = config.trust_anchors[ANCHOR].crls
    assert crl.get_revoked_certificate_by_serial_number(1234) is not None


def test_a_crl_not_signed_by_the_trust_anchor_is_refused(tmp_path, ca_pem):
    stranger = pki.issue("Config Test CA", now=dt.datetime.now(dt.UTC), is_ca=True)  # same name, other key
    (tmp_path / "stranger.crl").write_bytes(pki.revocation_list(stranger, 1).public_bytes(serialization.Encoding.PEM))
    anchor = {"arn": ANCHOR, "caBundle": "ca.pem", "crls": ["stranger.crl"]}
    with pytest.raises(ConfigError, match=r"trustAnchors\[0\].crls\[0\]: .* is not signed by a CA certificate"):
        load_config(write(tmp_path, ca_pem, document(trustAnchors=[anchor])), environ={})


def test_a_file_that_is_not_a_crl_is_refused(tmp_path, ca_pem):
    (tmp_path / "ca.crl").write_bytes(ca_pem)
    anchor = {"arn": ANCHOR, "caBundle": "ca.pem", "crls": ["ca.crl"]}
    with pytest.raises(ConfigError, match=r"trustAnchors\[0\].crls\[0\]: .* is not a PEM or DER X.509 CRL"):
        load_config(write(tmp_path, ca_pem, document(trustAnchors=[anchor])), environ={})


def test_a_bundle_certificate_that_cannot_be_a_trust_anchor_is_refused(tmp_path):
    """CreateTrustAnchor refuses a bundle whose certificate is not a CA; so does the emulator, at load."""
    not_a_ca = pki.issue("Leaf In Bundle", now=dt.datetime.now(dt.UTC), client=True).cert_pem
    with pytest.raises(ConfigError, match=r"trustAnchors\[0\].caBundle: .*'CN=Leaf In Bundle'.* is not a CA"):
        load_config(write(tmp_path, not_a_ca, document()), environ={})


POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}


@pytest.mark.parametrize("session_policy", [POLICY, json.dumps(POLICY, indent=2)], ids=["mapping", "json-text"])
def test_profile_session_policies(tmp_path, ca_pem, session_policy):
    """API reference, CreateProfile: sessionPolicy (a JSON policy document) and managedPolicyArns; the
    emulator passes them to AssumeRole as Policy (compact JSON) and PolicyArns."""
    profile = {
        "arn": PROFILE,
        "roleArns": [ROLE],
        "sessionPolicy": session_policy,
        "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/mine"],
    }
    config = load_config(write(tmp_path, ca_pem, document(profiles=[profile])), environ={})
    loaded = config.profiles[PROFILE]
    assert json.loads(loaded.session_policy) == POLICY and " " not in loaded.session_policy  # compact
    assert loaded.managed_policy_arns == (
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/mine",
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sessionPolicy": "{not json"}, r"profiles\[0\].sessionPolicy is not valid JSON"),
        ({"sessionPolicy": {"Version": "2012-10-17"}}, r"sessionPolicy must be a policy document"),
        (
            {"sessionPolicy": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "x" * 2100}]}},
            r"sessionPolicy is \d+ characters as compact JSON: STS takes at most 2048",
        ),
        ({"managedPolicyArns": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, r"managedPolicyArns must be a list"),
        (
            {"managedPolicyArns": ["arn:aws:iam::123456789012:role/app"]},
            r"managedPolicyArns\[0\] 'arn:aws:iam::123456789012:role/app' is not an IAM policy ARN",
        ),
        (
            {"managedPolicyArns": [f"arn:aws:iam::aws:policy/p{i}" for i in range(11)]},
            r"managedPolicyArns lists 11 policies: STS takes at most 10",
        ),
    ],
    ids=["not-json", "no-statement", "too-long", "not-a-list", "not-a-policy-arn", "too-many"],
)
def test_invalid_session_policies(tmp_path, ca_pem, changes, message):
    profile = {"arn": PROFILE, "roleArns": [ROLE], **changes}
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, ca_pem, document(profiles=[profile])), environ={})


def test_a_create_session_quota(tmp_path, ca_pem):
    config = load_config(write(tmp_path, ca_pem, document(quotas={"createSessionPerSecond": 10})), environ={})
    assert (config.create_session_rate, config.create_session_burst) == (10.0, 10)
    unlimited = load_config(write(tmp_path, ca_pem, document()), environ={})
    assert unlimited.create_session_rate is None


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ({"createSessionPerSecond": 0}, "quotas.createSessionPerSecond must be a positive number, got 0"),
        ({"createSessionPerSecond": "10"}, "quotas.createSessionPerSecond must be a positive number, got '10'"),
        ({"createSessionPerSecond": 10, "createSessionBurst": 0}, "quotas.createSessionBurst must be a whole number"),
        ({"createSessionBurst": 5}, "quotas.createSessionBurst needs quotas.createSessionPerSecond"),
        ({"createSessionsPerSecond": 10}, "quotas: unknown key 'createSessionsPerSecond'"),
    ],
)
def test_a_bad_quota_is_named(tmp_path, ca_pem, quotas, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, ca_pem, document(quotas=quotas)), environ={})
