"""Every setting of the sidecar, declared once (on rolesanywhere_settings): flag, environment variable,
default and meaning.

Each field of `Settings` is one setting: its flag is `--<name-with-dashes>`, its environment variable
`ROLESANYWHERE_<NAME_UPPER_SNAKE>`; flag > environment variable > default. The CLI builds its parsers from
`SETTINGS`, the operator renders the env of the sidecars it injects with `SETTINGS.render_env`, and
`SETTINGS.reference_markdown()` is the table sidecar/README.md carries (a unit test fails on drift).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rolesanywhere_protocol.limits import (
    PROFILE_ARN_PATTERN,
    ROLE_ARN_PATTERN,
    ROLE_SESSION_NAME_CHARACTERS,
    ROLE_SESSION_NAME_MAX,
    ROLE_SESSION_NAME_MIN,
    SESSION_DURATION_DEFAULT,
    SESSION_DURATION_MAX,
    SESSION_DURATION_MIN,
    TRUST_ANCHOR_ARN_PATTERN,
)
from rolesanywhere_settings import (
    Declaration,
    SettingsError,
    fraction,
    integer,
    path,
    setting,
    switch,
    text,
)
from rolesanywhere_settings import choice as _choice
from rolesanywhere_settings import port as _port  # `port` is also a field's name below

__all__ = ["KEY_ALGORITHMS", "SETTINGS", "Settings", "SettingsError", "identity_problem"]

ENV_PREFIX = "ROLESANYWHERE_"

# Subcommand groups, so each subcommand only shows the settings it reads.
FETCH = ("credential-process", "serve")
WRITE = ("serve", "check")
SERVE = ("serve",)
ALL = ("credential-process", "serve", "check")

#: Algorithms of the key the sidecar makes with identity_url (the first is the default).
KEY_ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "rsa-2048")

#: How much of the end of a name cut to ROLE_SESSION_NAME_MAX is kept: a pod's name ends with what tells it
#: from its siblings (a ReplicaSet hash and a random suffix), and starts with the workload's name.
ROLE_SESSION_NAME_KEPT_END = 16


def _role_session_name(value: str) -> str:
    """A role session name; a longer one (a pod's name can have 253 characters) keeps its start and end."""
    name = text(value)
    if not re.fullmatch(f"{ROLE_SESSION_NAME_CHARACTERS}{{{ROLE_SESSION_NAME_MIN},}}", name):
        raise ValueError(
            f"expected at least {ROLE_SESSION_NAME_MIN} of the characters A-Z a-z 0-9 + = , . @ _ -, got {value!r}"
        )
    if len(name) <= ROLE_SESSION_NAME_MAX:
        return name
    start = ROLE_SESSION_NAME_MAX - ROLE_SESSION_NAME_KEPT_END - 1
    return f"{name[:start]}-{name[-ROLE_SESSION_NAME_KEPT_END:]}"


def _arn(pattern: str, example: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not re.fullmatch(pattern, value.strip()):
            raise ValueError(f"expected an ARN like {example}, got {value!r}")
        return value.strip()

    return parse


_UUID_EXAMPLE = "0123abcd-0123-4567-89ab-0123456789ab"
_trust_anchor_arn = _arn(TRUST_ANCHOR_ARN_PATTERN, f"arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/{_UUID_EXAMPLE}")
_profile_arn = _arn(PROFILE_ARN_PATTERN, f"arn:aws:rolesanywhere:REGION:ACCOUNT:profile/{_UUID_EXAMPLE}")
_role_arn = _arn(ROLE_ARN_PATTERN, "arn:aws:iam::ACCOUNT:role/NAME")


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"expected an https:// URL, got {value!r}")
    return value.rstrip("/")


def _file_mode(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise ValueError(f"expected an octal file mode such as 0640, got {value!r}") from None
    if not 0 <= mode <= 0o777 or not mode & 0o400:
        raise ValueError(f"expected an octal file mode from 0400 to 0777 readable by its owner, got {value!r}")
    return mode


def _profile_name(value: str) -> str:
    if not value or any(c in value for c in "[]\r\n"):
        raise ValueError(f"expected an INI section name without brackets or line breaks, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    # Identity: read from disk for every CreateSession, so a renewed certificate is picked up.
    certificate: Path | None = setting(
        None, "X.509 certificate file (PEM or DER) presented to Roles Anywhere (required unless identity_url)",
        path, used_by=FETCH,
    )
    private_key: Path | None = setting(
        None, "private key file (PEM: PKCS#8, PKCS#1 or SEC1) of the certificate (required unless identity_url)",
        path, used_by=FETCH,
    )
    intermediates: Path | None = setting(
        None, "PEM bundle of intermediate CA certificates sent along with the certificate", path, used_by=FETCH
    )
    private_key_passphrase_file: Path | None = setting(
        None, "file holding the passphrase of an encrypted private key", path, used_by=FETCH
    )
    # Per-pod identity: the key made in memory, the certificate from the operator's identity endpoint.
    identity_url: str | None = setting(
        None,
        "URL of the operator's identity endpoint: the sidecar makes its private key in memory (never written) "
        "and gets its certificate there, renewing it before expiry; instead of certificate and private_key",
        _https_url, used_by=FETCH,
    )
    identity_ca_bundle: Path | None = setting(
        None, "PEM bundle of CA certificates trusted for the identity endpoint's TLS certificate", path,
        used_by=FETCH,
    )
    identity_token_file: Path = setting(
        Path("/var/run/secrets/rolesanywhere.dev/identity/token"),
        "projected service-account token presented to the identity endpoint (read for every request)", path,
        used_by=FETCH,
    )
    key_algorithm: str = setting(
        KEY_ALGORITHMS[0], f"algorithm of the in-memory key with identity_url: {', '.join(KEY_ALGORITHMS)}",
        _choice(*KEY_ALGORITHMS), used_by=FETCH,
    )
    renew_fraction: float = setting(
        0.67, "with identity_url, renew the certificate after this fraction of its lifetime (plus or minus 10% "
        "jitter)", fraction, used_by=FETCH,
    )
    # The session to create.
    trust_anchor_arn: str | None = setting(
        None, "ARN of the Roles Anywhere trust anchor that issued the certificate", _trust_anchor_arn,
        used_by=FETCH, required=True,
    )
    profile_arn: str | None = setting(
        None, "ARN of the Roles Anywhere profile", _profile_arn, used_by=FETCH, required=True
    )
    role_arn: str | None = setting(None, "ARN of the IAM role to assume", _role_arn, used_by=FETCH, required=True)
    region: str | None = setting(
        None, "AWS region of the Roles Anywhere endpoint (default: the trust anchor ARN's region)", text,
        used_by=FETCH,
    )
    endpoint: str | None = setting(
        None, "Roles Anywhere endpoint URL (default: the regional endpoint)", _endpoint, used_by=FETCH
    )
    session_duration: int = setting(
        SESSION_DURATION_DEFAULT,
        f"requested session lifetime in seconds ({SESSION_DURATION_MIN} to {SESSION_DURATION_MAX})",
        integer(SESSION_DURATION_MIN, SESSION_DURATION_MAX), used_by=FETCH,
    )
    role_session_name: str | None = setting(
        None,
        f"role session name; one longer than {ROLE_SESSION_NAME_MAX} characters keeps its start and its last "
        f"{ROLE_SESSION_NAME_KEPT_END} (default: none is sent, and the service uses the certificate's serial "
        "number; only a profile that accepts role session names accepts a request with one)",
        _role_session_name, used_by=FETCH,
    )
    # Transport to the Roles Anywhere endpoint.
    ca_bundle: Path | None = setting(
        None, "PEM bundle of CA certificates trusted for the endpoint's TLS certificate", path, used_by=FETCH
    )
    with_proxy: bool = setting(
        False, "use the HTTPS_PROXY/HTTP_PROXY/NO_PROXY environment for the endpoint", switch, used_by=FETCH,
        switch=True,
    )
    no_verify_ssl: bool = setting(
        False, "do not verify the endpoint's TLS certificate (testing only)", switch, used_by=FETCH, switch=True
    )
    # Delivery to the pod's other containers.
    output_dir: Path = setting(
        Path("/var/run/secrets/rolesanywhere"), "shared directory receiving credentials, credentials.json and token",
        path, used_by=WRITE,
    )
    credentials_dir: Path | None = setting(
        None,
        "directory receiving credentials and credentials.json instead of the output directory, which then holds "
        "only the token: one the app containers do not mount keeps the files from a file-read bug in an app "
        "(default: the output directory)",
        path, used_by=WRITE,
    )
    no_credentials_endpoint: bool = setting(
        False,
        "hand out no credentials on the loopback endpoint and write no token, for pods that read only the "
        "credentials file (/healthz, /readyz and /metrics stay)",
        switch, used_by=SERVE, switch=True,
    )
    profile_name: str = setting(
        "default", "profile (INI section) name in the credentials file", _profile_name, used_by=SERVE
    )
    file_mode: int = setting(
        0o640,
        "octal mode of the written files; group-readable so containers sharing the pod's fsGroup can read them",
        _file_mode, used_by=SERVE, render=lambda mode: f"{mode:04o}",
    )
    port: int = setting(
        9911, "port of the credentials endpoint on 127.0.0.1 (0 picks a free port)", _port, used_by=SERVE
    )
    health_port: int = setting(
        9912,
        "port of the health listener on every address of the pod (IPv6 and IPv4, or IPv4 where the pod has no "
        "IPv6), for the kubelet's probes and Prometheus: /healthz, /readyz and /metrics only, never credentials "
        "(0: no such listener)",
        _port, used_by=SERVE,
    )
    refresh_fraction: float = setting(
        0.5, "refresh after this fraction of the session lifetime (plus or minus 10% jitter)", fraction,
        used_by=SERVE,
    )
    once: bool = setting(
        False, "fetch once, write the files and exit (for an init container)", switch, used_by=SERVE, switch=True
    )
    # Logging.
    log_format: str = setting("text", "log line format: text or json", _choice("text", "json"), used_by=ALL)
    log_level: str = setting(
        "info", "lowest level logged: debug, info, warning or error", _choice("debug", "info", "warning", "error"),
        used_by=ALL,
    )

    @property
    def credentials_directory(self) -> Path:
        """Where credentials and credentials.json go (and where `check` looks)."""
        return self.credentials_dir or self.output_dir


#: The sidecar's settings: flags, environment, parsing, rendering and the reference table.
SETTINGS: Declaration[Settings] = Declaration(Settings, ENV_PREFIX)


def identity_problem(settings: Settings) -> str | None:
    """What is wrong with where a fetching command's identity comes from: files, or the identity endpoint."""
    files = [name for name in ("certificate", "private_key", "intermediates", "private_key_passphrase_file")
             if getattr(settings, name) is not None]
    if settings.identity_url is not None:
        if files:
            told = " and ".join(f"{SETTINGS.flag(name)} ({SETTINGS.env(name)})" for name in files)
            return (f"{SETTINGS.flag('identity_url')} makes the key in memory and gets the certificate from the "
                    f"identity endpoint; {told} cannot be given with it")
        return None
    missing = [name for name in ("certificate", "private_key") if getattr(settings, name) is None]
    if missing:
        told = " and ".join(f"{SETTINGS.flag(name)} (or {SETTINGS.env(name)})" for name in missing)
        return f"missing {told}: the certificate and key presented to Roles Anywhere, or set {SETTINGS.flag('identity_url')}"
    return None
