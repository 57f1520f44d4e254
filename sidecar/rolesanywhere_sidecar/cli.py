"""`rolesanywhere-sidecar`: credential-process, serve [--once], check.

Heavy modules (rolesanywhere_protocol, the endpoint's HTTP server) are imported inside the subcommand
that needs them, so `check` (for scripts and exec probes; the injected sidecar's probes are httpGet
probes of /readyz on its health port instead) starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TextIO

from rolesanywhere_protocol.clock import utc_now

from .contract import CREDENTIALS_JSON_FILE as CREDENTIALS_JSON
from .files import MIN_VALIDITY, UnusableCredentialsFile, check_credentials_file
from .hardening import make_undumpable
from .logs import Redactor, configure, get_logger
from .settings import FETCH, SETTINGS, Settings, SettingsError, identity_problem

PROG = "rolesanywhere-sidecar"
COMMANDS = {
    "credential-process": "print credentials as credential_process JSON (a drop-in for aws_signing_helper)",
    "serve": "keep credentials fresh in the output directory and on the loopback endpoint",
    "check": f"exit 0 only when {CREDENTIALS_JSON} holds credentials valid for at least "
    f"{int(MIN_VALIDITY.total_seconds())} s (what serve's /readyz answers, for scripts and exec probes)",
}

log = get_logger("main")


class Stopping(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT; a BaseException so no `except Exception` swallows it."""


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    raise Stopping(signal.Signals(signum).name)


def _exit_now(signum: int, _frame: FrameType | None) -> None:
    # A second signal while shutting down terminates at once; the files are complete either way. This
    # stays a Python handler: resetting to SIG_DFL instead races with a signal already on its way, which
    # CPython then reports as an OSError in whatever thread runs, instead of exiting.
    os._exit(128 + signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="AWS credentials from IAM Roles Anywhere for the containers of a pod.",
        epilog="Every flag also reads an environment variable (shown with it); flags win.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, meaning in COMMANDS.items():
        sub = commands.add_parser(name, help=meaning, description=meaning)
        SETTINGS.add_arguments(sub, name)
    return parser


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    try:
        settings = SETTINGS.resolve(args, environ, command)
        problem = identity_problem(settings) if command in FETCH else None
        if problem:
            raise SettingsError(problem)
    except SettingsError as error:
        print(f"{PROG} {command}: {error}", file=stderr)
        return 2
    if command == "check":
        return check(settings, stdout, stderr)
    redactor = Redactor()
    configure(settings.log_format, settings.log_level, stderr, redactor)
    # Both commands read the private key and hold credentials; `check` (the probe) reads neither.
    make_undumpable()
    if command == "credential-process":
        return credential_process(settings, stdout, stderr)
    return serve(settings, redactor)


def check(settings: Settings, stdout: TextIO, stderr: TextIO) -> int:
    path = settings.credentials_directory / CREDENTIALS_JSON
    try:
        expiration = check_credentials_file(path, now=utc_now(), min_validity=MIN_VALIDITY)
    except UnusableCredentialsFile as error:
        print(f"{PROG} check: not ready: {error}", file=stderr)
        return 1
    print(f"ready: credentials valid until {expiration.isoformat()}", file=stdout)
    return 0


def credential_process(settings: Settings, stdout: TextIO, stderr: TextIO) -> int:
    from rolesanywhere_protocol import ConfigError

    from .fetch import SessionFetcher
    from .refresher import CertificateFilesMissing, FetchFailed

    identity = None
    if settings.identity_url:
        from .pod_identity import IdentityClient, IdentityError, generate_key

        client = IdentityClient(settings.identity_url, token_file=settings.identity_token_file,
                                ca_bundle=settings.identity_ca_bundle)
        try:
            issued = client.issue(generate_key(settings.key_algorithm))
        except IdentityError as error:
            print(f"{PROG} credential-process: {error}", file=stderr)
            return 1
        identity = lambda: issued
    try:
        fetcher = SessionFetcher(settings, max_attempts=3, identity=identity)
    except ConfigError as error:
        print(f"{PROG} credential-process: {error}", file=stderr)
        return 1
    try:
        credentials, _fields = fetcher()
    except CertificateFilesMissing as missing:
        print(f"{PROG} credential-process: {', '.join(map(str, missing.paths))}: no such file", file=stderr)
        return 1
    except FetchFailed as error:
        print(f"{PROG} credential-process: {error}", file=stderr)
        return 1
    finally:
        fetcher.close()
    stdout.write(json.dumps(credentials.to_process_json()) + "\n")
    stdout.flush()
    return 0


def serve(settings: Settings, redactor: Redactor) -> int:
    """Run until SIGTERM/SIGINT (or, with --once, until the first credentials are written)."""
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    try:
        from .serve import run

        return run(settings, redactor)
    except Stopping as stopping:
        log.info("stopping", extra={"signal": str(stopping)})
        return 1 if settings.once else 0
