"""Every setting of the sidecar, declared once: flag, environment variable, default and meaning.

Each field of `Settings` is one setting. Its flag is `--<name-with-dashes>` and its environment
variable `ROLESANYWHERE_<NAME_UPPER_SNAKE>`. Precedence: flag > environment variable > default.
Each setting is a dataclass field whose metadata (`about(...)`) holds its meaning and parser.
The CLI builds its parsers from these declarations and `reference_markdown()` renders the table
that sidecar/README.md carries (a unit test fails when the two drift apart).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ENV_PREFIX = "ROLESANYWHERE_"

# Subcommand groups, so each subcommand only shows the settings it reads.
FETCH = ("credential-process", "serve")
WRITE = ("serve", "check")
SERVE = ("serve",)
ALL = ("credential-process", "serve", "check")


class SettingsError(ValueError):
    """A setting has a bad value or a required one is missing; the message names the flag and env var."""


def _path(text: str) -> Path:
    if not text:
        raise ValueError("expected a file path, got an empty string")
    return Path(text)


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty string")
    return text.strip()


#: The service's limit on a role session name; longer names (a pod's name can have up to 253
#: characters) are cut to it.
ROLE_SESSION_NAME_MAX = 64
#: How much of the end of a cut name is kept: a pod's name ends with what tells it from its siblings
#: (a ReplicaSet hash and a random suffix), and starts with the workload's name.
ROLE_SESSION_NAME_KEPT_END = 16


def _role_session_name(text: str) -> str:
    name = _text(text)
    if not re.fullmatch(r"[A-Za-z0-9_+=,.@-]{2,}", name):
        raise ValueError(f"expected at least 2 of the characters A-Z a-z 0-9 + = , . @ _ -, got {text!r}")
    if len(name) <= ROLE_SESSION_NAME_MAX:
        return name
    start = ROLE_SESSION_NAME_MAX - ROLE_SESSION_NAME_KEPT_END - 1
    return f"{name[:start]}-{name[-ROLE_SESSION_NAME_KEPT_END:]}"


def _arn(text: str) -> str:
    if not text.startswith("arn:") or text.count(":") < 5:
        raise ValueError(f"expected an ARN like arn:aws:rolesanywhere:REGION:ACCOUNT:..., got {text!r}")
    return text


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number between 0 and 1 (exclusive), got {text!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"expected a number between 0 and 1 (exclusive), got {value}")
    return value


def _endpoint(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _file_mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise ValueError(f"expected an octal file mode such as 0640, got {text!r}") from None
    if not 0 <= value <= 0o777 or not value & 0o400:
        raise ValueError(f"expected an octal file mode from 0400 to 0777 readable by its owner, got {text!r}")
    return value


def _profile_name(text: str) -> str:
    if not text or any(c in text for c in "[]\r\n"):
        raise ValueError(f"expected an INI section name without brackets or line breaks, got {text!r}")
    return text


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text.lower()

    return parse


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def about(
    meaning: str,
    parse: Callable[[str], object],
    used_by: tuple[str, ...],
    *,
    switch: bool = False,
    required: bool = False,
    shown_default: str | None = None,
) -> dict[str, object]:
    """The field metadata of one setting: a one-line meaning, how to parse its text, who reads it."""
    return {
        "meaning": meaning,
        "parse": parse,
        "used_by": used_by,
        "switch": switch,
        "required": required,
        "shown_default": shown_default,
    }


@dataclass(frozen=True)
class Settings:
    # Identity: read from disk for every CreateSession, so a renewed certificate is picked up.
    certificate: Path | None = field(
        default=None,
        metadata=about(
            "X.509 certificate file (PEM or DER) presented to Roles Anywhere", _path, FETCH, required=True
        ),
    )
    private_key: Path | None = field(
        default=None,
        metadata=about(
            "private key file (PEM: PKCS#8, PKCS#1 or SEC1) of the certificate", _path, FETCH, required=True
        ),
    )
    intermediates: Path | None = field(
        default=None,
        metadata=about(
            "PEM bundle of intermediate CA certificates sent along with the certificate", _path, FETCH
        ),
    )
    private_key_passphrase_file: Path | None = field(
        default=None, metadata=about("file holding the passphrase of an encrypted private key", _path, FETCH)
    )
    # The session to create.
    trust_anchor_arn: str | None = field(
        default=None,
        metadata=about(
            "ARN of the Roles Anywhere trust anchor that issued the certificate", _arn, FETCH, required=True
        ),
    )
    profile_arn: str | None = field(
        default=None, metadata=about("ARN of the Roles Anywhere profile", _arn, FETCH, required=True)
    )
    role_arn: str | None = field(
        default=None, metadata=about("ARN of the IAM role to assume", _arn, FETCH, required=True)
    )
    region: str | None = field(
        default=None,
        metadata=about(
            "AWS region of the Roles Anywhere endpoint (default: the trust anchor ARN's region)", _text, FETCH
        ),
    )
    endpoint: str | None = field(
        default=None,
        metadata=about("Roles Anywhere endpoint URL (default: the regional endpoint)", _endpoint, FETCH),
    )
    session_duration: int = field(
        default=3600,
        metadata=about(
            "requested session lifetime in seconds (900 to 43200)", _bounded_int(900, 43200), FETCH
        ),
    )
    role_session_name: str | None = field(
        default=None,
        metadata=about(
            "role session name; one longer than 64 characters keeps its start and its last 16 (default: none "
            "is sent, and the service uses the certificate's serial number; only a profile that accepts role "
            "session names accepts a request with one)",
            _role_session_name,
            FETCH,
        ),
    )
    # Transport to the Roles Anywhere endpoint.
    ca_bundle: Path | None = field(
        default=None,
        metadata=about(
            "PEM bundle of CA certificates trusted for the endpoint's TLS certificate", _path, FETCH
        ),
    )
    with_proxy: bool = field(
        default=False,
        metadata=about(
            "use the HTTPS_PROXY/HTTP_PROXY/NO_PROXY environment for the endpoint",
            _switch,
            FETCH,
            switch=True,
        ),
    )
    no_verify_ssl: bool = field(
        default=False,
        metadata=about(
            "do not verify the endpoint's TLS certificate (testing only)", _switch, FETCH, switch=True
        ),
    )
    # Delivery to the pod's other containers.
    output_dir: Path = field(
        default=Path("/var/run/secrets/rolesanywhere"),
        metadata=about("shared directory receiving credentials, credentials.json and token", _path, WRITE),
    )
    credentials_dir: Path | None = field(
        default=None,
        metadata=about(
            "directory receiving credentials and credentials.json instead of the output directory, which then "
            "holds only the token: one the app containers do not mount keeps the files from a file-read bug "
            "in an app (default: the output directory)",
            _path,
            WRITE,
        ),
    )
    no_credentials_endpoint: bool = field(
        default=False,
        metadata=about(
            "hand out no credentials on the loopback endpoint and write no token, for pods that read only the "
            "credentials file (/healthz, /readyz and /metrics stay)",
            _switch,
            SERVE,
            switch=True,
        ),
    )
    profile_name: str = field(
        default="default",
        metadata=about("profile (INI section) name in the credentials file", _profile_name, SERVE),
    )
    file_mode: int = field(
        default=0o640,
        metadata=about(
            "octal mode of the written files; group-readable so containers sharing the pod's fsGroup can read them",
            _file_mode,
            SERVE,
            shown_default="0640",
        ),
    )
    port: int = field(
        default=9911,
        metadata=about(
            "port of the credentials endpoint on 127.0.0.1 (0 picks a free port)",
            _bounded_int(0, 65535),
            SERVE,
        ),
    )
    refresh_fraction: float = field(
        default=0.5,
        metadata=about(
            "refresh after this fraction of the session lifetime (plus or minus 10% jitter)", _fraction, SERVE
        ),
    )
    once: bool = field(
        default=False,
        metadata=about(
            "fetch once, write the files and exit (for an init container)", _switch, SERVE, switch=True
        ),
    )
    # Logging.
    log_format: str = field(
        default="text", metadata=about("log line format: text or json", _choice("text", "json"), ALL)
    )
    log_level: str = field(
        default="info",
        metadata=about(
            "lowest level logged: debug, info, warning or error",
            _choice("debug", "info", "warning", "error"),
            ALL,
        ),
    )


    @property
    def credentials_directory(self) -> Path:
        """Where credentials and credentials.json go (and where `check` looks)."""
        return self.credentials_dir or self.output_dir


FIELDS: tuple[dataclasses.Field, ...] = dataclasses.fields(Settings)


def flag_of(f: dataclasses.Field) -> str:
    return "--" + f.name.replace("_", "-")


def env_of(f: dataclasses.Field) -> str:
    return ENV_PREFIX + f.name.upper()


def shown_default(f: dataclasses.Field) -> str:
    if f.metadata["shown_default"] is not None:
        return f.metadata["shown_default"]
    if f.metadata["switch"]:
        return "false"
    return "" if f.default is None else str(f.default)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the flags of `command` to `parser`; unset flags stay absent so env vars and defaults apply."""
    for f in FIELDS:
        if command not in f.metadata["used_by"]:
            continue
        default = shown_default(f)
        help_text = f"{f.metadata['meaning']} [env {env_of(f)}" + (
            f"; default {default}]" if default else "]"
        )
        help_text = help_text.replace("%", "%%")  # argparse expands %-placeholders in help
        if f.metadata["switch"]:
            parser.add_argument(
                flag_of(f), dest=f.name, action="store_true", default=argparse.SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(
                flag_of(f), dest=f.name, metavar=f.name.upper(), default=argparse.SUPPRESS, help=help_text
            )


def resolve(command: str, flags: Mapping[str, object], environ: Mapping[str, str]) -> Settings:
    """Settings for `command` from parsed flags (text values), the environment and the defaults.

    Raises SettingsError naming the flag and environment variable of a bad or missing value.
    """
    values: dict[str, object] = {}
    for f in FIELDS:
        if command not in f.metadata["used_by"]:
            continue
        parse = f.metadata["parse"]
        if f.name in flags:
            raw, source = flags[f.name], flag_of(f)
            if isinstance(raw, bool):
                values[f.name] = raw
                continue
        elif env_of(f) in environ:
            raw, source = environ[env_of(f)], env_of(f)
        else:
            if f.metadata["required"]:
                raise SettingsError(f"missing {flag_of(f)} (or {env_of(f)}): {f.metadata['meaning']}")
            continue
        try:
            values[f.name] = parse(str(raw))
        except ValueError as error:
            raise SettingsError(f"bad {source}: {error}") from None
    return Settings(**values)


def reference_markdown() -> str:
    """The settings table for the README: flag, environment variable, default, meaning."""
    rows = [
        "| Flag | Environment variable | Default | Meaning | Used by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in FIELDS:
        default = shown_default(f)
        meaning = f.metadata["meaning"] + (" (required)" if f.metadata["required"] else "")
        rows.append(
            f"| `{flag_of(f)}` | `{env_of(f)}` | {f'`{default}`' if default else ''} | {meaning} "
            f"| {', '.join(f.metadata['used_by'])} |"
        )
    return "\n".join(rows) + "\n"
