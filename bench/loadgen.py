"""The load generator, run as its own process so its work never shares a core or a GIL with what it measures.

    python -m bench.loadgen get --port P --path PATH [--header 'Name: value'] --clients N --seconds S
        N clients each GET the path back to back for S seconds, each request on a new connection
        (as an SDK fetching credentials does), or on one kept-alive connection per client (--keep-alive).
    python -m bench.loadgen create --kubeconfig K --path API_PATH --objects FILE.jsonl --in-flight N
        POST each object of FILE (one JSON document a line) to the API server, N requests in flight.

Prints one JSON document: {"latencies_ms": [...], "errors": n, "first_error": str, "seconds": wall time,
"cpu_seconds": own CPU; for get also "timeouts", "in_window" (requests done before the deadline) and
"window_seconds"}. Latency is from opening the connection (or sending, on a kept-alive one) to reading
the whole response.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path

import yaml

#: A GET not answered by then counts as failed (a connection whose SYNs keep being dropped would
#: otherwise hold the run for a minute of retransmissions).
REQUEST_TIMEOUT_SECONDS = 5


class Tally:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.errors = 0
        self.first_error = ""
        self.timeouts = 0
        self.in_window = 0  # requests that ended before the deadline: the basis of requests/s

    def failed(self, message: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or message

    def report(self, seconds: float) -> dict:
        return {
            "latencies_ms": self.latencies_ms,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": seconds,
            "cpu_seconds": time.process_time(),
            "timeouts": self.timeouts,
            "in_window": self.in_window,
        }


# --- GET on loopback ------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _exchange(port: int, request: bytes, connection, keep_alive: bool):
    """One request and its response; (status, the connection to reuse or None)."""
    if connection is None:
        connection = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = connection
    writer.write(request)
    status = await _read_response(reader)
    if not keep_alive:
        writer.close()
        connection = None
    return status, connection


async def _get_client(port: int, request: bytes, deadline: float, keep_alive: bool, tally: Tally) -> None:
    clock = time.perf_counter
    connection = None
    while clock() < deadline:
        started = clock()
        try:
            status, connection = await asyncio.wait_for(
                _exchange(port, request, connection, keep_alive), REQUEST_TIMEOUT_SECONDS
            )
        except TimeoutError:
            tally.failed(f"no answer within {REQUEST_TIMEOUT_SECONDS} s")
            tally.timeouts += 1
            connection = None
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            tally.failed(f"{type(error).__name__}: {error}")
            connection = None
            continue
        if status == 200:
            tally.latencies_ms.append((clock() - started) * 1000)
            tally.in_window += clock() <= deadline
        else:
            tally.failed(f"HTTP {status}")
    if connection is not None:
        connection[1].close()


async def run_get(args: argparse.Namespace) -> dict:
    headers = [f"GET {args.path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}"]
    headers += args.header
    headers.append("Connection: keep-alive" if args.keep_alive else "Connection: close")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()
    tally = Tally()
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.gather(
        *(_get_client(args.port, request, deadline, args.keep_alive, tally) for _ in range(args.clients))
    )
    report = tally.report(time.perf_counter() - started)
    report["window_seconds"] = args.seconds
    return report


# --- POST to the API server -----------------------------------------------------------------------


def tls_from_kubeconfig(path: Path, directory: Path) -> tuple[str, ssl.SSLContext]:
    config = yaml.safe_load(path.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    files = {}
    for key in ("client-certificate-data", "client-key-data"):
        files[key] = directory / key
        files[key].write_bytes(base64.b64decode(user[key]))
    tls = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    tls.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    return cluster["server"], tls


async def run_create(args: argparse.Namespace) -> dict:
    import httpx

    objects = [line for line in Path(args.objects).read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as directory:
        server, tls = tls_from_kubeconfig(Path(args.kubeconfig), Path(directory))
    tally = Tally()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for document in objects:
        queue.put_nowait(document)
    limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)
    async with httpx.AsyncClient(base_url=server, verify=tls, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                try:
                    response = await client.post(
                        args.path, content=body, headers={"Content-Type": "application/json"}
                    )
                except httpx.HTTPError as error:
                    tally.failed(f"{type(error).__name__}: {error}")
                    continue
                if response.status_code == 201:
                    tally.latencies_ms.append((time.perf_counter() - started) * 1000)
                else:
                    tally.failed(f"HTTP {response.status_code}: {response.text[:300]}")

        # One warm-up request opens a connection, so the first measured one pays no TLS handshake.
        await client.get("/version")
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.in_flight)))
        return tally.report(time.perf_counter() - started)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cpu", type=int, help="run on this CPU only")
    modes = parser.add_subparsers(dest="mode", required=True)
    get = modes.add_parser("get")
    get.add_argument("--port", type=int, required=True)
    get.add_argument("--path", required=True)
    get.add_argument("--header", action="append", default=[])
    get.add_argument("--clients", type=int, required=True)
    get.add_argument("--seconds", type=float, required=True)
    get.add_argument("--keep-alive", action="store_true")
    create = modes.add_parser("create")
    create.add_argument("--kubeconfig", required=True)
    create.add_argument("--path", required=True)
    create.add_argument("--objects", required=True)
    create.add_argument("--in-flight", type=int, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    result = asyncio.run(run_get(args) if args.mode == "get" else run_create(args))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
