"""A small hostile world on 127.0.0.1: scripted HTTP servers, a scripted resolver, and a network that maps
pretend public addresses onto loopback servers while recording every connection attempted.

The policy under test runs unchanged (private targets refused): only the resolver's answers and where a
'public' address really leads are staged, so no test sends a packet beyond loopback.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore

PUBLIC = "93.184.215.14"  # stands for any public receiver; the staged network leads it to a loopback server
Route = Callable[[BaseHTTPRequestHandler], None]
_sequence = itertools.count()


@dataclass
class Server:
    """A threaded HTTP server on 127.0.0.1 answering by path; records (event, path, order) of what it did."""

    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    events: list[tuple[str, str, int]] = field(default_factory=list)

    def record(self, event: str, path: str) -> None:
        self.events.append((event, path, next(_sequence)))

    def order_of(self, event: str, path: str) -> int:
        return next(n for e, p, n in self.events if (e, p) == (event, path))

    def requested(self, path: str) -> int:
        return sum(1 for e, p, _ in self.events if (e, p) == ("request", path))

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str) -> Route:
    return answer(302, headers={"Location": location})


def trickle(body: bytes, server: Server, path: str, bytes_per_second: float = 1.0) -> Route:
    """A document sent one byte at a time; the server records each byte sent and when it stopped."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                server.record("byte", path)
                time.sleep(1 / bytes_per_second)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            server.record("finished", path)

    return route


@contextmanager
def serving(server: Server | None = None) -> Iterator[Server]:
    """Run a Server in a thread on a free loopback port until the block ends."""
    state = server or Server()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            state.record("request", self.path)
            state.routes.get(self.path, answer(404))(self)

        do_POST = do_GET

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class StubResolver:
    """Answers names from a script: each call takes the next answer, the last one repeating; counts the calls."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): list(script) for name, script in answers.items()}
        self.calls: list[str] = []

    def answer(self, host: str) -> list[str]:
        self.calls.append(host)
        script = self.answers.get(host)
        if not script:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return script.pop(0) if len(script) > 1 else script[0]

    async def __call__(self, host: str, port: int) -> list[str]:
        return self.answer(host)


class StagedNetwork(httpcore.AsyncNetworkBackend):
    """Leads each staged address to a loopback port, records every connection asked for, refuses the rest."""

    def __init__(self, leads: dict[str, int] | None = None) -> None:
        self.leads = dict(leads or {})
        self.attempts: list[tuple[str, int]] = []
        self.real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host,
        port,
        timeout=None,  # noqa: ASYNC109
        local_address=None,
        socket_options=None,
    ):
        self.attempts.append((host, port))
        if host == "127.0.0.1":
            return await self.real.connect_tcp(host, port, timeout=timeout, socket_options=socket_options)
        if host in self.leads:
            return await self.real.connect_tcp(
                "127.0.0.1", self.leads[host], timeout=timeout, socket_options=socket_options
            )
        raise httpcore.ConnectError(f"staged network: {host} is not reachable from a test")

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)
