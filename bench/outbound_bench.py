"""The outbound policy's cost: POSTs to a loopback receiver through the pinned transport (shared/outbound.py),
against a bare httpx client (the anchor) in the same run, interleaved run by run.

Two shapes: kept-alive connections (a webhook receiver taking many notifications: the policy costs a port check
per request), and a new connection per request to the name `localhost` (each one resolved in a worker thread
and checked; the bare client resolves in a thread too). The receiver is on loopback, so the pinned client runs
with private targets allowed, as development does.

Run: .venv/bin/python bench/outbound_bench.py [--runs 5] [--requests 1500] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.outbound import OutboundPolicy, pinned_transport  # noqa: E402

BODY = b"x" * 500  # about one alert's JSON


def serve() -> int:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def client(kind: str, keepalive: bool, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency if keepalive else 0)
    if kind == "bare":
        return httpx.AsyncClient(limits=limits, trust_env=False)
    return httpx.AsyncClient(
        transport=pinned_transport(OutboundPolicy(allow_private=True), limits=limits), trust_env=False
    )


async def timed(http: httpx.AsyncClient, url: str, requests: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            (await http.post(url, content=BODY)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    port = serve()
    shapes = {
        "kept-alive, 127.0.0.1": (True, f"http://127.0.0.1:{port}/hook", args.requests),
        "new connection each, localhost": (False, f"http://localhost:{port}/hook", args.requests // 3),
    }
    for shape, (keepalive, url, requests) in shapes.items():
        seconds: dict[str, list[float]] = {"bare": [], "pinned": []}
        for run in range(args.runs):
            for kind in ("bare", "pinned") if run % 2 == 0 else ("pinned", "bare"):
                async with client(kind, keepalive, args.concurrency) as http:
                    seconds[kind].append(await timed(http, url, requests, args.concurrency))
            print(f"{shape:32} run {run + 1}: bare {seconds['bare'][-1]:.2f} s, pinned {seconds['pinned'][-1]:.2f} s")
        bare, pinned = statistics.median(seconds["bare"]), statistics.median(seconds["pinned"])
        print(
            f"{shape:32} {requests} POSTs, medians of {args.runs}: bare httpx {requests / bare:.0f}/s, "
            f"pinned transport {requests / pinned:.0f}/s, {pinned / bare:.2f}x the bare client's time\n"
        )


if __name__ == "__main__":
    asyncio.run(main())
