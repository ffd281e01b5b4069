"""Stand-ins for the services the console's ops desk reads: scoring's own read API app on a loopback port, and
a loopback ingest answering `GET /v1/sources` with the body ingest builds from its SourceHealth records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from services.ingest.poll import SourceHealth
from tests.conftest import free_port
from tests.eventually import eventually_blocking


@contextmanager
def serving(app) -> Iterator[str]:
    """An ASGI app served by uvicorn on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the app stopped while starting"
        return server.started

    eventually_blocking(started, within=20, what="the app started", every=0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serving_sources(health: dict[str, SourceHealth], key: str) -> Iterator[str]:
    """A loopback ingest: `GET /v1/sources` with the bearer key answers `{name: vars(health)}`, as ingest does."""
    body = json.dumps({name: vars(h) for name, h in health.items()}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's hook name)
            ok = self.path == "/v1/sources" and self.headers.get("authorization") == f"Bearer {key}"
            reply = body if ok else b'{"detail": "a valid API key is required"}'
            self.send_response(200 if ok else 401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
