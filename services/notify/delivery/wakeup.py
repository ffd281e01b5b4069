"""Waking the outbox worker when a notification is enqueued: at once in this process, and through PostgreSQL
`LISTEN/NOTIFY` in every other replica sharing the database.

Polling stays as the fallback: a NOTIFY lost while the listener reconnects, or a database without NOTIFY
(SQLite, where only one worker runs anyway), costs at most one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from services.notify.delivery import metrics
from services.notify.delivery.retry import outage_backoff

log = logging.getLogger(__name__)

CHANNEL = "mews_outbox"
LISTENER_NAME = "mews-notify-outbox-listen"  # application_name of the LISTEN connection, to find it in pg_stat_activity


def conninfo_of(database_url: str) -> str | None:
    """The libpq connection string of a PostgreSQL SQLAlchemy URL; None for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    args = {k: str(v) for k, v in url.translate_connect_args(username="user", database="dbname").items()}
    args.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return make_conninfo(**args)


class OutboxWakeup:
    """A wake-up call for the outbox worker: `notify` after an enqueue commits, `wait` in the worker."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        liveness_seconds: float = 30.0,
        statement_timeout: float = 5.0,
    ) -> None:
        self._conninfo = conninfo_of(database_url) if database_url else None
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.liveness_seconds, self.statement_timeout = liveness_seconds, statement_timeout
        # Our own NOTIFYs come back to our listener; the token lets it ignore them (the local event already fired).
        self._token = uuid.uuid4().hex
        self._event = asyncio.Event()
        self.reason = ""
        self.waiting = False  # the worker is parked in `wait`: what a caller can wait for instead of a sleep
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: psycopg.AsyncConnection | None = None
        self._publishing = False
        self._publish_again = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def shared(self) -> bool:
        """Whether other replicas can be woken (the database is PostgreSQL)."""
        return self._conninfo is not None

    def _in_loop(self, callback: object, *args: object) -> None:
        """Run on the worker's event loop, whatever thread calls (dispatch may commit in a worker thread)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop = self._loop or running
        if loop is None:
            return  # no loop has waited or notified yet: nobody to wake, and the first round looks anyway
        if running is not loop:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing is waiting any more
                loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]
        else:
            callback(*args)  # type: ignore[operator]

    def set(self, reason: str = "signal") -> None:
        """Wake this process's worker."""
        self._in_loop(self._set, reason)

    def _set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def notify(self) -> None:
        """Notifications were enqueued and committed: wake this worker at once and, on PostgreSQL, every replica."""
        self.set("signal")
        if self._conninfo is not None:
            self._in_loop(self._start_publish)

    def clear(self) -> None:
        """Forget earlier wake-ups: the worker is about to look at the outbox."""
        self._event.clear()
        self.reason = ""

    async def wait(self, seconds: float, stopping: asyncio.Event) -> str:
        """Until woken, stopping, or `seconds` pass; returns why (`poll` when the time ran out)."""
        self._loop = asyncio.get_running_loop()
        if not self._event.is_set() and not stopping.is_set() and seconds > 0:
            waiters = [asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stopping.wait())]
            self.waiting = True
            try:
                await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.waiting = False
                for waiter in waiters:
                    waiter.cancel()
        return self.reason if self._event.is_set() else "poll"

    # --- other replicas: NOTIFY out, LISTEN in -----------------------------------------------------

    def _start_publish(self) -> None:
        if self._publishing:
            self._publish_again = True  # one NOTIFY after the one in flight covers every enqueue meanwhile
            return
        task = asyncio.get_running_loop().create_task(self._publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self) -> None:
        self._publishing = True
        try:
            self._publish_again = True
            while self._publish_again:
                self._publish_again = False
                if not await self._send_notify():
                    return
        finally:
            self._publishing = False

    async def _send_notify(self) -> bool:
        # A kept connection may have died with a database restart: then one more try on a fresh one.
        for fresh in (self._sender is None or self._sender.closed, True):
            try:
                async with asyncio.timeout(self.statement_timeout):
                    if fresh:
                        await self._close_sender()
                        self._sender = await self._connect()
                    assert self._sender is not None
                    await self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._token))
                metrics.OUTBOX_NOTIFY.labels("sent").inc()
                return True
            except (psycopg.Error, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                if fresh:
                    break
        # Other replicas fall back to polling; the next enqueue tries again.
        metrics.OUTBOX_NOTIFY.labels("failed").inc()
        log.warning("outbox NOTIFY failed; replicas will poll", extra={"error": error})
        await self._close_sender()
        return False

    async def _connect(self, application_name: str = "mews-notify") -> psycopg.AsyncConnection:
        # libpq reads connect_timeout 0 as "wait forever"
        return await psycopg.AsyncConnection.connect(
            self._conninfo or "",
            autocommit=True,
            connect_timeout=max(1, round(self.statement_timeout)),
            application_name=application_name,
        )

    async def aclose(self) -> None:
        """Close the NOTIFY connection (the listener closes with `listen`)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_sender()

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await sender.close()

    async def listen(self, stopping: asyncio.Event) -> None:
        """LISTEN for enqueues of other replicas until stopped or cancelled; survives the database going away.

        A lost connection is retried with exponential backoff; after each (re)connect the worker is woken once,
        since a NOTIFY sent while nobody listened is gone.
        """
        self._loop = asyncio.get_running_loop()
        if self._conninfo is None:
            return
        backoff = outage_backoff(self.backoff_initial, self.backoff_max)
        try:
            while not stopping.is_set():
                try:
                    await self._listen_once(stopping)
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    metrics.OUTBOX_LISTENING.set(0)
                    delay = backoff.next()
                    log.warning(
                        "outbox listener lost the database; polling until it reconnects",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_in": delay},
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), delay)
                    continue
                backoff.reset()
        finally:
            metrics.OUTBOX_LISTENING.set(0)
            await self._close_sender()

    async def _listen_once(self, stopping: asyncio.Event) -> None:
        async with asyncio.timeout(self.statement_timeout):
            conn = await self._connect(application_name=LISTENER_NAME)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            metrics.OUTBOX_LISTENING.set(1)
            log.info("outbox listening for enqueues", extra={"channel": CHANNEL})
            self.set("reconnect")
            while not stopping.is_set():
                async for note in conn.notifies(timeout=self.liveness_seconds):
                    if note.payload != self._token:
                        self.set("notify")
                # No word for a while: make sure the connection is still there (a silent loss shows here).
                async with asyncio.timeout(self.statement_timeout):
                    await conn.execute("SELECT 1")
