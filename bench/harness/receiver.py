"""A loopback HTTP receiver that answers every POST at once and records its path, headers, body and arrival time.

It runs aiohttp on an event loop of its own thread, so thousands of concurrent POSTs (Alertmanager sends one per
group) are taken in without a thread each; signatures are verified afterwards, off the clock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.time() when the body was read


class Receiver:
    """Start with `with Receiver() as r:`; `r.url(path)` is where to send, `r.since(i)` what came after the i-th."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.port = 0
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self) -> int:
        with self._lock:
            return len(self._deliveries)

    def since(self, start: int) -> list[Delivery]:
        """The deliveries from the `start`-th on, in arrival order."""
        with self._lock:
            return self._deliveries[start:]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        delivery = Delivery(request.path, {k.lower(): v for k, v in request.headers.items()}, body, time.time())
        with self._lock:
            self._deliveries.append(delivery)
        return web.Response(status=self.status)

    def __enter__(self) -> Receiver:
        # A sender that dies mid-request is the benchmark's finding, not a traceback of the receiver's.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="receiver", daemon=True)
        self._thread.start()
        if not started.wait(10) or failure:
            raise RuntimeError(f"receiver did not start: {failure[0] if failure else 'timeout'}")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
