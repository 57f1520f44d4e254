"""The sidecar's HTTP listeners: one server, two route sets.

The loopback endpoint (127.0.0.1), which SDKs reach through AWS_CONTAINER_CREDENTIALS_FULL_URI:

GET /v1/credentials  container credentials JSON; only with `Authorization: <token>`, else 401; 404
                     when the sidecar runs without a token (--no-credentials-endpoint)
GET /healthz         200 while the process runs
GET /readyz          200 while the held credentials stay valid for at least MIN_VALIDITY
GET /metrics         Prometheus text

The pod's containers share its network namespace, nothing else does. The health listener (every
address of the pod, on --health-port) answers /healthz, /readyz and /metrics only, for the kubelet's
probes and Prometheus; it holds no token, and every other path, /v1/credentials included, is 404 there
whatever the request carries. It is reachable from the pod network, so it serves a bounded number of
connections at once (a flood costs probes, not the sidecar's memory).
"""

from __future__ import annotations

import datetime as dt
import errno
import hmac
import json
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

from .contract import CREDENTIALS_PATH, HEALTHZ_PATH, METRICS_PATH, READYZ_PATH
from .files import MIN_VALIDITY
from .logs import get_logger
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics

if TYPE_CHECKING:
    from rolesanywhere_protocol.credentials import Credentials

LOOPBACK_HOST = "127.0.0.1"
REQUEST_TIMEOUT_SECONDS = 10  # a client that stalls mid-request loses its connection

#: What the loopback endpoint answers: everything.
LOOPBACK_PATHS = (CREDENTIALS_PATH, HEALTHZ_PATH, READYZ_PATH, METRICS_PATH)
#: What the health listener on the pod's addresses answers: never credentials.
HEALTH_PATHS = (HEALTHZ_PATH, READYZ_PATH, METRICS_PATH)
#: Connections the health listener serves at once (the kubelet's two probes and a scraper or two need
#: far fewer); beyond it a connection is closed at once instead of costing a thread.
HEALTH_MAX_CONNECTIONS = 16
#: Where the health listener binds, in order: every IPv6 address and, dual-stack, every IPv4 one; every
#: IPv4 address where the kernel has no IPv6.
ANY_ADDRESSES = ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0"))
#: Errors binding an address family that mean "this pod has no such family", not "the port is taken".
_NO_SUCH_FAMILY = {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT}

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


class EndpointServer(ThreadingHTTPServer):
    """An HTTP server for `paths` (a subset of LOOPBACK_PATHS) on `host`; every other path is 404."""

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
        host: str = LOOPBACK_HOST,
        family: socket.AddressFamily = socket.AF_INET,
        paths: Iterable[str] = LOOPBACK_PATHS,
        max_connections: int | None = None,
        name: str = "credentials endpoint",
    ) -> None:
        self.token = None if token is None else token.encode()
        self.store = store
        self.metrics = metrics
        self.now = now
        self.name = name
        self.paths = tuple(paths)
        unknown = set(self.paths) - set(_Handler.ROUTES)
        if unknown:
            raise ValueError(f"no route for {', '.join(sorted(unknown))}")
        self._slots = None if max_connections is None else threading.BoundedSemaphore(max_connections)
        self.address_family = family
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            shown = f"[{host}]" if ":" in host else host
            raise OSError(error.errno, f"{name}: cannot listen on {shown}:{port}: {error.strerror}") from error

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as ::ffff:a.b.c.d
        # Not HTTPServer.server_bind: its socket.getfqdn() of the address can wait on DNS at start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{self.paths[0]}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": self.POLL_INTERVAL_SECONDS}, daemon=True)
        thread.start()
        log.info(f"{self.name} listening", extra={"url": self.url, "paths": list(self.paths)})
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots is not None and not self._slots.acquire(blocking=False):
            log.debug("too many connections: closed one", extra={"client": client_address[0]})
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self._slots is not None:
                self._slots.release()

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A request that failed (most often a client gone mid-response) is one JSON log line; socketserver's
        default prints a traceback to stderr, which breaks the one-JSON-object-per-line log."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client went away", extra={"client": client_address[0], "error": type(error).__name__})
            return
        log.warning("request failed", extra={"client": client_address[0], "error": repr(error)})


def credentials_server(
    port: int, *, token: str | None, store: CredentialStore, metrics: Metrics, now: Callable[[], dt.datetime]
) -> EndpointServer:
    """The loopback endpoint: credentials for holders of `token` (none without one), health and metrics."""
    return EndpointServer(port, token=token, store=store, metrics=metrics, now=now)


def health_server(
    port: int,
    *,
    store: CredentialStore,
    metrics: Metrics,
    now: Callable[[], dt.datetime],
) -> EndpointServer:
    """The listener on every address of the pod: HEALTH_PATHS only, with no token to hand anything out for.

    Dual-stack where the kernel has IPv6, else IPv4 only; a port already taken is an error either way."""
    failed: OSError | None = None
    for family, host in ANY_ADDRESSES:
        try:
            return EndpointServer(
                port, token=None, store=store, metrics=metrics, now=now, host=host, family=family,
                paths=HEALTH_PATHS, max_connections=HEALTH_MAX_CONNECTIONS, name="health endpoint",
            )
        except OSError as error:
            if error.errno not in _NO_SUCH_FAMILY:
                raise
            failed = error
    raise failed or OSError(errno.EAFNOSUPPORT, "no address family to listen on")


class _Handler(BaseHTTPRequestHandler):
    server: EndpointServer
    server_version = "rolesanywhere-sidecar"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS
    #: Every route there is; each server answers those of its `paths`.
    ROUTES: ClassVar[dict[str, Callable[[_Handler], None]]]

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in self.server.paths:
            self.ROUTES[path](self)
        else:
            self._send_json(404, {"message": f"no such path; this port serves {', '.join(self.server.paths)}"})

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


_Handler.ROUTES = {
    CREDENTIALS_PATH: _Handler._credentials,
    HEALTHZ_PATH: _Handler._healthz,
    READYZ_PATH: _Handler._readyz,
    METRICS_PATH: _Handler._metrics,
}
