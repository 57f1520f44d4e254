"""The emulator's HTTP(S) server.

Routes:
  POST /sessions              CreateSession (the ARNs in the JSON body or as query parameters)
  GET  /_emulator/health      200 when serving
  GET  /_emulator/sessions    every CreateSession answer so far: status, error, certificate serial/subject, ARNs
  DELETE /_emulator/sessions  forget them
  POST /_emulator/faults      answer the next `count` CreateSession requests with an error instead:
                              {"status": 503, "code": "ServiceUnavailableException", "message": "...", "count": 1}
  DELETE /_emulator/faults    drop pending faults
The /_emulator routes are the emulator's own (the service has none); they need no signature.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rolesanywhere_protocol.clock import utc_now

from .authentication import IncomingRequest
from .aws import AwsClient
from .config import EmulatorConfig
from .debuglog import Fault
from .service import CreateSessionService

log = logging.getLogger(__name__)

#: Largest request body read, in bytes (CreateSession bodies are a few hundred).
MAX_BODY_BYTES = 64 * 1024
#: Timeout for the emulator's own IAM/STS calls, in seconds.
AWS_CALL_TIMEOUT = 10.0


class EmulatorServer:
    """A running emulator. `start()` serves on a background thread (for tests); `serve_forever()` blocks."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ):
        self._http = httpx.Client(timeout=AWS_CALL_TIMEOUT, trust_env=False)
        self.service = CreateSessionService(config, AwsClient(config.sts, self._http), clock)
        self._server = ThreadingHTTPServer((host, port), _handler_for(self.service))
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rolesanywhere-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
        if self._thread:
            self._thread.join(timeout=10)


def _read_chunked(stream) -> bytes:
    """A chunked transfer-encoded body (RFC 9112 section 7.1); trailers are read and dropped."""
    body = b""
    while True:
        size_line = stream.readline(1024)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ValueError(f"bad chunk size line {size_line[:40]!r}") from None
        if size == 0:
            break
        if len(body) + size > MAX_BODY_BYTES:
            raise ValueError(f"body larger than {MAX_BODY_BYTES} bytes")
        body += stream.read(size)
        stream.readline(1024)  # the CRLF after the chunk
    while stream.readline(1024).strip():  # trailers, up to the empty line
        pass
    return body


def _handler_for(service: CreateSessionService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "rolesanywhere-emulator"

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self._body()
            if body is None:
                return
            if parts.path == "/sessions":
                request = IncomingRequest(
                    method="POST",
                    path=parts.path,
                    query=parts.query,
                    headers=list(self.headers.items()),
                    body=body,
                )
                answer = service.handle(request)
                self._send(answer.status, answer.body, answer.headers)
            elif parts.path == "/_emulator/faults":
                self._inject_fault(body)
            else:
                self._not_found()

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_emulator/health":
                self._send(200, {"status": "ok"})
            elif path == "/_emulator/sessions":
                self._send(200, {"sessions": service.sessions.snapshot()})
            else:
                self._not_found()

        def do_DELETE(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_emulator/sessions":
                service.sessions.clear()
                self._send(200, {"sessions": []})
            elif path == "/_emulator/faults":
                service.clear_faults()
                self._send(200, {})
            else:
                self._not_found()

        def _inject_fault(self, body: bytes) -> None:
            try:
                spec = json.loads(body or b"{}")
                fault = Fault(
                    status=int(spec.get("status", 503)),
                    code=str(spec.get("code", "ServiceUnavailableException")),
                    message=str(spec.get("message", "Service unavailable (injected by the emulator)")),
                    count=int(spec.get("count", 1)),
                )
            except (ValueError, TypeError, AttributeError) as error:
                self._send(
                    400,
                    {"message": f"expected {{status, code, message, count}} as JSON: {error}"},
                    {"x-amzn-ErrorType": "ValidationException"},
                )
                return
            service.inject_fault(fault)
            self._send(200, {"status": fault.status, "code": fault.code, "count": fault.count})

        def _body(self) -> bytes | None:
            """The request body (Content-Length or chunked, as Go's HTTP client sends it); None after a 400."""
            try:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    return _read_chunked(self.rfile)
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= MAX_BODY_BYTES:
                    raise ValueError(f"Content-Length {length} is out of range")
                return self.rfile.read(length) if length else b""
            except ValueError as error:
                self.close_connection = True
                self._send(
                    400,
                    {"message": f"Malformed request body: {error}"},
                    {"x-amzn-ErrorType": "ValidationException"},
                )
                return None

        def _not_found(self) -> None:
            self._send(
                404,
                {"message": f"No route for {self.command} {urlsplit(self.path).path}"},
                {"x-amzn-ErrorType": "UnknownOperationException"},
            )

        def _send(self, status: int, document: dict, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(document).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
