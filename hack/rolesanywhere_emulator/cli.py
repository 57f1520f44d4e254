"""`rolesanywhere-emulator --config FILE [--host 127.0.0.1] [--port N] [--tls-cert F --tls-key F]`.

Prints one line `rolesanywhere-emulator listening on URL` on stdout once it serves (with --port 0
the URL carries the port the system chose), logs each CreateSession answer on stderr, and stops on
SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from rolesanywhere_protocol.errors import ConfigError

from .config import load_config
from .server import EmulatorServer

READY_PREFIX = "rolesanywhere-emulator listening on "


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rolesanywhere-emulator",
        description="An offline IAM Roles Anywhere CreateSession endpoint that mints credentials with STS AssumeRole.",
    )
    parser.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8443, help="port to listen on; 0 picks a free one (default 8443)"
    )
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", type=Path, help="private key of --tls-cert")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore"):  # one line per STS call is noise next to our own CreateSession lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("rolesanywhere-emulator: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        server = EmulatorServer(
            config, host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key
        )
    except ConfigError as error:
        print(f"rolesanywhere-emulator: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"rolesanywhere-emulator: cannot listen on {args.host}:{args.port} or read the TLS files: {error}",
            file=sys.stderr,
        )
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"{READY_PREFIX}{server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C does


if __name__ == "__main__":
    sys.exit(main())
