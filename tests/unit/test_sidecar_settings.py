"""Sidecar settings: one declaration per setting, flag > environment > default, clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rolesanywhere_settings import about_of
from rolesanywhere_sidecar import cli
from rolesanywhere_sidecar.settings import SETTINGS, Settings, SettingsError, identity_problem

FIELDS = SETTINGS.fields


def flag_of(f):
    return SETTINGS.flag(f.name)


def env_of(f):
    return SETTINGS.env(f.name)


def resolve(command, flags, environ):
    return SETTINGS.resolve(flags, environ, command)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARNS = {
    "ROLESANYWHERE_TRUST_ANCHOR_ARN": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0123abcd-0123-4567-89ab-0123456789ab",
    "ROLESANYWHERE_PROFILE_ARN": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0123abcd-0123-4567-89ab-0123456789ab",
    "ROLESANYWHERE_ROLE_ARN": "arn:aws:iam::123456789012:role/app",
    "ROLESANYWHERE_CERTIFICATE": "/certs/tls.crt",
    "ROLESANYWHERE_PRIVATE_KEY": "/certs/tls.key",
}


def test_the_brief_flags_exist_with_their_env_vars_and_defaults():
    by_flag = {flag_of(f): f for f in FIELDS}
    for flag in [
        "--certificate",
        "--private-key",
        "--intermediates",
        "--private-key-passphrase-file",
        "--trust-anchor-arn",
        "--profile-arn",
        "--role-arn",
        "--region",
        "--endpoint",
        "--session-duration",
        "--role-session-name",
        "--ca-bundle",
        "--with-proxy",
        "--no-verify-ssl",
        "--output-dir",
        "--profile-name",
        "--port",
        "--refresh-fraction",
        "--log-format",
        "--log-level",
        "--file-mode",
        "--once",
    ]:
        assert flag in by_flag, flag
        assert env_of(by_flag[flag]) == "ROLESANYWHERE_" + flag[2:].upper().replace("-", "_")
    defaults = resolve("serve", {}, ARNS)
    assert defaults.output_dir == Path("/var/run/secrets/rolesanywhere")
    assert (defaults.profile_name, defaults.port, defaults.refresh_fraction) == ("default", 9911, 0.5)
    assert (defaults.file_mode, defaults.log_format, defaults.log_level) == (0o640, "text", "info")
    assert (defaults.session_duration, defaults.with_proxy, defaults.no_verify_ssl) == (3600, False, False)


def test_every_setting_has_a_one_line_meaning_and_a_subcommand():
    for f in FIELDS:
        about = about_of(f)
        assert about.meaning and "\n" not in about.meaning, f.name
        assert about.used_by and set(about.used_by) <= set(cli.COMMANDS), f.name


def test_flag_beats_environment_which_beats_default():
    environ = {**ARNS, "ROLESANYWHERE_PORT": "9000", "ROLESANYWHERE_PROFILE_NAME": "from-env"}
    resolved = resolve("serve", {"port": "9100"}, environ)
    assert resolved.port == 9100
    assert resolved.profile_name == "from-env"
    assert resolved.refresh_fraction == 0.5


def test_values_are_parsed_into_their_types():
    environ = {
        **ARNS,
        "ROLESANYWHERE_FILE_MODE": "0644",
        "ROLESANYWHERE_WITH_PROXY": "true",
        "ROLESANYWHERE_NO_VERIFY_SSL": "0",
        "ROLESANYWHERE_ENDPOINT": "http://127.0.0.1:8443/",
        "ROLESANYWHERE_LOG_FORMAT": "JSON",
    }
    resolved = resolve("serve", {"once": True, "session_duration": "900"}, environ)
    assert resolved.file_mode == 0o644
    assert resolved.with_proxy is True and resolved.no_verify_ssl is False and resolved.once is True
    assert resolved.endpoint == "http://127.0.0.1:8443"
    assert resolved.session_duration == 900
    assert resolved.certificate == Path("/certs/tls.crt")
    assert resolved.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ROLESANYWHERE_PORT", "http", r"bad ROLESANYWHERE_PORT: expected an integer from 0 to 65535"),
        ("ROLESANYWHERE_PORT", "70000", r"bad ROLESANYWHERE_PORT: expected an integer from 0 to 65535"),
        ("ROLESANYWHERE_SESSION_DURATION", "60", r"bad ROLESANYWHERE_SESSION_DURATION: .* 900 to 43200"),
        ("ROLESANYWHERE_REFRESH_FRACTION", "1.5", r"bad ROLESANYWHERE_REFRESH_FRACTION: .*between 0 and 1"),
        ("ROLESANYWHERE_FILE_MODE", "rw-r-----", r"bad ROLESANYWHERE_FILE_MODE: expected an octal file mode"),
        ("ROLESANYWHERE_FILE_MODE", "0040", r"bad ROLESANYWHERE_FILE_MODE: .*readable by its owner"),
        ("ROLESANYWHERE_WITH_PROXY", "maybe", r"bad ROLESANYWHERE_WITH_PROXY: expected true or false"),
        (
            "ROLESANYWHERE_ENDPOINT",
            "127.0.0.1:80",
            r"bad ROLESANYWHERE_ENDPOINT: expected an http:// or https://",
        ),
        ("ROLESANYWHERE_ROLE_ARN", "app-role", r"bad ROLESANYWHERE_ROLE_ARN: expected an ARN like"),
        ("ROLESANYWHERE_LOG_LEVEL", "loud", r"bad ROLESANYWHERE_LOG_LEVEL: expected one of debug, info"),
        ("ROLESANYWHERE_PROFILE_NAME", "a]b", r"bad ROLESANYWHERE_PROFILE_NAME: expected an INI section"),
    ],
)
def test_bad_values_name_the_variable_and_what_is_expected(name, value, expected):
    with pytest.raises(SettingsError, match=expected):
        resolve("serve", {}, {**ARNS, name: value})


def test_bad_flag_values_name_the_flag():
    with pytest.raises(SettingsError, match=r"bad --port: expected an integer"):
        resolve("serve", {"port": "x"}, ARNS)


def test_missing_required_settings_name_flag_and_variable():
    environ = {k: v for k, v in ARNS.items() if k != "ROLESANYWHERE_PROFILE_ARN"}
    with pytest.raises(SettingsError, match=r"missing --profile-arn \(or ROLESANYWHERE_PROFILE_ARN\)"):
        resolve("credential-process", {}, environ)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({k: v for k, v in ARNS.items() if k != "ROLESANYWHERE_PRIVATE_KEY"},
         ("missing --private-key (or ROLESANYWHERE_PRIVATE_KEY): the certificate and key presented to Roles "
         "Anywhere, or set --identity-url")),
        ({**ARNS, "ROLESANYWHERE_IDENTITY_URL": "https://operator.example/pod-identity"},
         ("--identity-url makes the key in memory and gets the certificate from the identity endpoint; "
         "--certificate (ROLESANYWHERE_CERTIFICATE) and --private-key (ROLESANYWHERE_PRIVATE_KEY) cannot be given")),
    ],
)
def test_the_identity_comes_from_files_or_from_the_identity_endpoint_never_both(environ, message):
    stderr = io.StringIO()
    assert cli.main(["credential-process"], environ=environ, stderr=stderr) == 2
    assert message in stderr.getvalue()


def test_with_the_identity_endpoint_no_certificate_file_is_needed():
    environ = {k: v for k, v in ARNS.items() if "CERTIFICATE" not in k and "PRIVATE_KEY" not in k}
    settings = resolve("serve", {}, {**environ, "ROLESANYWHERE_IDENTITY_URL": "https://op.example/pod-identity"})
    assert identity_problem(settings) is None
    assert settings.key_algorithm == "ecdsa-p256" and settings.renew_fraction == 0.67
    with pytest.raises(SettingsError, match=r"bad ROLESANYWHERE_IDENTITY_URL: expected an https:// URL"):
        resolve("serve", {}, {**environ, "ROLESANYWHERE_IDENTITY_URL": "http://op.example"})


def test_check_needs_no_identity_settings():
    assert resolve("check", {"output_dir": "/tmp/x"}, {}).output_dir == Path("/tmp/x")


def test_cli_reports_a_bad_setting_with_exit_code_2():
    stderr = io.StringIO()
    assert cli.main(["serve"], environ={**ARNS, "ROLESANYWHERE_PORT": "-1"}, stderr=stderr) == 2
    assert "rolesanywhere-sidecar serve: bad ROLESANYWHERE_PORT" in stderr.getvalue()


def test_a_pod_name_longer_than_the_service_allows_keeps_its_start_and_its_distinguishing_end():
    long_pod_name = "nightly-backup-" + "x" * 100 + "-7d4f8b9c6-abcde"
    resolved = resolve("serve", {}, {**ARNS, env_of(_field("role_session_name")): long_pod_name})
    assert len(resolved.role_session_name) == 64
    assert resolved.role_session_name.startswith("nightly-backup-xxx")
    assert resolved.role_session_name.endswith("-7d4f8b9c6-abcde")
    siblings = {resolve("serve", {}, {**ARNS, env_of(_field("role_session_name")): long_pod_name[:-5] + s})
                .role_session_name for s in ("abcde", "fghij")}
    assert len(siblings) == 2


def test_a_session_name_of_64_characters_is_kept_as_it_is():
    name = "a" * 64
    assert resolve("serve", {}, {**ARNS, env_of(_field("role_session_name")): name}).role_session_name == name


def test_no_role_session_name_is_sent_by_default():
    assert resolve("serve", {}, ARNS).role_session_name is None


def test_a_role_session_name_with_characters_the_service_refuses_is_an_error():
    with pytest.raises(SettingsError, match="ROLESANYWHERE_ROLE_SESSION_NAME.*A-Z a-z 0-9"):
        resolve("serve", {}, {**ARNS, env_of(_field("role_session_name")): "has space"})


def _field(name):
    return next(f for f in FIELDS if f.name == name)


def test_every_setting_renders_to_an_environment_the_sidecar_parses_back_to_the_same_value():
    changed = Settings(
        certificate=Path("/c/tls.crt"), private_key=Path("/c/tls.key"), intermediates=Path("/c/chain.pem"),
        private_key_passphrase_file=Path("/c/pass"), trust_anchor_arn=ARNS["ROLESANYWHERE_TRUST_ANCHOR_ARN"],
        profile_arn=ARNS["ROLESANYWHERE_PROFILE_ARN"], role_arn=ARNS["ROLESANYWHERE_ROLE_ARN"], region="eu-west-1",
        endpoint="https://ra.example", session_duration=900, role_session_name="job-1", ca_bundle=Path("/ca/b"),
        with_proxy=True, no_verify_ssl=True, output_dir=Path("/out"), credentials_dir=Path("/private"),
        no_credentials_endpoint=True, profile_name="app", file_mode=0o600, port=9000, health_port=0,
        refresh_fraction=0.25, once=True, log_format="json", log_level="debug",
        identity_url="https://operator.example/pod-identity", identity_ca_bundle=Path("/id/ca.crt"),
        identity_token_file=Path("/id/token"), key_algorithm="rsa-2048", renew_fraction=0.5,
    )
    unchanged = {f.name for f in FIELDS if getattr(changed, f.name) == f.default}
    assert not unchanged, f"give these a value other than their default: {unchanged}"
    environ = SETTINGS.render_env(changed)
    assert len(environ) == len(FIELDS)
    assert resolve("serve", {}, environ) == changed


def test_rendering_leaves_out_defaults_unless_asked_to_keep_them():
    defaults = resolve("serve", {}, ARNS)
    assert SETTINGS.render_env(defaults) == ARNS
    assert SETTINGS.render_env(defaults, always=["port"]) == {**ARNS, "ROLESANYWHERE_PORT": "9911"}
