"""The loopback credentials endpoint that SDKs reach through AWS_CONTAINER_CREDENTIALS_FULL_URI.

GET /v1/credentials  container credentials JSON; only with `Authorization: <token>`, else 401; 404
                     when the sidecar runs without a token (--no-credentials-endpoint)
GET /healthz         200 while the process runs
GET /readyz          200 while the held credentials stay valid for at least MIN_VALIDITY
GET /metrics         Prometheus text

It listens on 127.0.0.1 only: the pod's containers share the network namespace, nothing else does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .contract import CREDENTIALS_PATH
from .files import MIN_VALIDITY
from .logs import get_logger
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics

if TYPE_CHECKING:
    from rolesanywhere_protocol.credentials import Credentials

LISTEN_HOST = "127.0.0.1"
REQUEST_TIMEOUT_SECONDS = 10  # a client that stalls mid-request loses its connection

log = get_logger("server")


class CredentialStore:
    """The current credentials, shared between the refresher (writer) and request threads (readers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None

    def set(self, credentials: Credentials) -> None:
        with self._lock:
            self._credentials = credentials

    def get(self) -> Credentials | None:
        with self._lock:
            return self._credentials


class CredentialsServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when many SDK clients of the pod ask at once,
    # and a dropped SYN costs its client a one-second retransmit (bench figure 3).
    request_queue_size = 128
    #: How often the serving loop checks for stop(): the only reason it wakes while idle.
    POLL_INTERVAL_SECONDS = 1.0

    def __init__(
        self,
        port: int,
        *,
        token: str | None,
        store: CredentialStore,
        metrics: Metrics,
        now: Callable[[], dt.datetime],
    ) -> None:
        self.token = None if token is None else token.encode()
        self.store = store
        self.metrics = metrics
        self.now = now
        super().__init__((LISTEN_HOST, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": self.POLL_INTERVAL_SECONDS}, daemon=True)
        thread.start()
        log.info(
            "credentials endpoint listening",
            extra={"url": f"http://{LISTEN_HOST}:{self.port}{CREDENTIALS_PATH}"},
        )
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A request that failed (most often a client gone mid-response) is one JSON log line; socketserver's
        default prints a traceback to stderr, which breaks the one-JSON-object-per-line log."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client went away", extra={"client": client_address[0], "error": type(error).__name__})
            return
        log.warning("request failed", extra={"client": client_address[0], "error": repr(error)})


class _Handler(BaseHTTPRequestHandler):
    server: CredentialsServer
    server_version = "rolesanywhere-sidecar"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        routes = {
            CREDENTIALS_PATH: self._credentials,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }
        route = routes.get(path)
        if route is None:
            self._send_json(404, {"message": f"no such path; try {CREDENTIALS_PATH}"})
        else:
            route()

    def _authorized(self) -> bool:
        presented = self.headers.get("Authorization")
        token = self.server.token
        return presented is not None and token is not None and hmac.compare_digest(presented.encode(), token)

    def _credentials(self) -> None:
        if self.server.token is None:
            self._send_json(
                404, {"message": "this sidecar hands out no credentials here; read AWS_SHARED_CREDENTIALS_FILE"}
            )
            return
        if not self._authorized():
            self._send_json(
                401, {"message": "missing or wrong Authorization header: send the token file's content"}
            )
            return
        credentials = self.server.store.get()
        if credentials is None:
            self._send_json(503, {"message": "no credentials yet: the first CreateSession has not succeeded"})
        elif credentials.expiration <= self.server.now():
            self._send_json(503, {"message": "credentials expired and could not be refreshed yet"})
        else:
            self._send_json(200, credentials.to_container_json())

    def _healthz(self) -> None:
        self._send_text(200, "ok\n")

    def _readyz(self) -> None:
        credentials = self.server.store.get()
        if credentials is None:
            self._send_text(503, "no credentials yet\n")
        elif credentials.expiration - self.server.now() < MIN_VALIDITY:
            self._send_text(503, f"credentials valid for less than {int(MIN_VALIDITY.total_seconds())} s\n")
        else:
            self._send_text(200, "ok\n")

    def _metrics(self) -> None:
        self._send(200, self.server.metrics.render().encode(), METRICS_CONTENT_TYPE)

    def _send_json(self, status: int, document: dict[str, Any]) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Only method, path and status: never headers, where the token travels.
        log.debug(
            "request", extra={"request": self.requestline[:200], "status": args[1] if len(args) > 1 else ""}
        )

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("request error: " + (format % args)[:200])
