"""The notifier's running parts: the breaches consumer, the outbox worker and the repeat sweep, in one loop.

The consumer commits a Kafka offset only after the alerts and outbox rows of its batch are committed to the
database, so a crash replays breaches (which de-duplication absorbs) and never loses one. The pipeline's
database work runs in one worker thread, so the event loop (Kafka heartbeats, the API, the outbox) never waits
on it. Every loop waits faults out with backoff: a lost group membership or failed commit re-reads from the
committed offsets, a database or broker away is retried, and the process never ends on a fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.notify.delivery.email import SmtpConfig
from services.notify.delivery.outbox import DeliveryLimits, DeliveryPolicy, OutboxWorker, release_claims
from services.notify.delivery.retry import RetrySchedule
from services.notify.delivery.wakeup import OutboxWakeup
from services.notify.matching import SubscriptionIndex, build_index
from services.notify.outbound import check_send_target
from services.notify.pipeline.alert import Timing
from services.notify.pipeline.dispatch import (
    DispatchUnit,
    catch_up,
    dispatch_breaches,
    sweep_firing,
    units_by_pairs,
)
from services.notify.settings import NotifySettings
from services.notify.store import models, open_breaches
from services.notify.store.db import create_db_engine, database_away, read_mostly, session_factory, unit_of_work
from shared import topics
from shared.events import BreachRaised, EnvelopeError, decode
from shared.kafka import EventProducer, check_kafka
from shared.metrics import CONSUMER_LAG
from shared.outbound import OutboundPolicy, pinned_transport

log = logging.getLogger(__name__)
SERVICE = "notify"
SOURCE = "mews/notify"


ALERTS_FIRING = Gauge("mews_notify_alerts_firing", "Alerts firing now, over every organisation", ["severity"])
REWINDS = Counter(
    "mews_notify_consumer_rewinds_total",
    "Times the breaches consumer went back to its committed offsets, by cause",
    ["cause"],
)
FAULTS = Counter(
    "mews_notify_faults_total",
    "Faults a loop of the notifier waited out, by loop and dependency",
    ["loop", "dependency"],
)
DISPATCH_SECONDS = Histogram(
    "mews_notify_dispatch_seconds",
    "Time of one dispatch transaction (worker thread)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DISPATCH_PAIRS = Counter("mews_notify_dispatch_pairs_total", "Alert-organisation pairs dispatched")

# Waiting out a fault: 0.2 s, 0.4 s ... capped at 5 s, so a database back after 10 s is used within 5 s.
FAULT_BACKOFF = RetrySchedule(initial=0.2, multiplier=2.0, max_interval=5.0, jitter=0.2, max_attempts=1 << 30)
T = TypeVar("T")


def dependency_of(exc: BaseException) -> str:
    """Which dependency a fault comes from: the database, the broker, or the notifier itself."""
    if database_away(exc):
        return "database"
    if isinstance(exc, KafkaError):
        return "broker"
    return "notifier"


def timing_from(settings: NotifySettings) -> Timing:
    """The group timers the settings ask for."""
    from datetime import time as clock_time

    return Timing(
        group_wait=timedelta(seconds=settings.group_wait_seconds),
        group_interval=timedelta(seconds=settings.group_interval_seconds),
        repeat_interval=timedelta(seconds=settings.repeat_interval_seconds),
        digest_at=clock_time(settings.digest_hour_utc, 0),
        digest_weekday=settings.digest_weekday,
    )


def policy_from(settings: NotifySettings, lease: timedelta | None = None) -> DeliveryPolicy:
    """The retry schedule and channel-disabling threshold the settings ask for."""
    schedule = RetrySchedule(
        initial=settings.retry_initial_seconds,
        multiplier=settings.retry_multiplier,
        max_interval=settings.retry_max_interval_seconds,
        jitter=settings.retry_jitter,
        max_attempts=settings.retry_max_attempts,
    )
    lease = lease or timedelta(seconds=max(60.0, 3 * settings.webhook_timeout_seconds))
    return DeliveryPolicy(
        schedule=schedule, disable_after_failures=settings.channel_disable_after_failures, lease=lease
    )


def webhook_client(settings: NotifySettings, limits: DeliveryLimits) -> httpx.AsyncClient:
    """The client every webhook goes through: no redirects, and each connection under the outbound policy."""
    # One client for every send: connections to a receiver are kept alive between notifications.
    pool = httpx.Limits(
        max_connections=limits.concurrency, max_keepalive_connections=limits.concurrency, keepalive_expiry=30.0
    )
    transport = pinned_transport(OutboundPolicy(settings.allow_private_webhook_targets), limits=pool)
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds, transport=transport, follow_redirects=False, trust_env=False
    )


def smtp_from(settings: NotifySettings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
        user=settings.smtp_user,
        password=settings.smtp_password.get_secret_value(),
        timeout=settings.smtp_timeout_seconds,
    )


@dataclass
class BatchResult:
    breaches: int = 0
    dead_lettered: int = 0


class Notifier:
    """Consumes breaches into alerts and outbox rows, and sends the outbox; `run` until `stop`."""

    def __init__(
        self,
        settings: NotifySettings,
        sessions: sessionmaker[Session] | None = None,
        *,
        group_id: str = "mews-notify",
        index_refresh_seconds: float = 5.0,
        sweep_interval_seconds: float = 15.0,
        lease: timedelta | None = None,
        clock: Callable[[], datetime] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self._engine = None
        if sessions is None:
            self._engine = create_db_engine(settings.database_url.get_secret_value())
            sessions = session_factory(self._engine)
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        self._dialect = bind.dialect.name if bind is not None else ""
        self.group_id = group_id
        self.topic = settings.topic(topics.BREACHES)
        self.timing = timing_from(settings)
        self.inhibit_rules = tuple(settings.inhibit_rules)
        self.policy = policy_from(settings, lease)
        self.index_refresh_seconds = index_refresh_seconds
        self.sweep_interval_seconds = sweep_interval_seconds
        self.clock = clock or models.utcnow
        self.consumer_options = dict(consumer_options or {})
        self._index: SubscriptionIndex | None = None
        self._index_built = 0.0
        self._stopping = asyncio.Event()
        # One thread for the pipeline's database work: batches and sweeps never contend with each other.
        self._database_thread: ThreadPoolExecutor | None = None
        self.waiting: dict[str, str] = {}  # dependency -> the fault a loop is waiting out now
        self.processed = 0

    # --- the pieces, callable alone -------------------------------------------------------------

    def index(self) -> SubscriptionIndex:
        """The subscription index, rebuilt when older than the refresh period (subscriptions change via the API)."""
        if self._index is None or time.monotonic() - self._index_built >= self.index_refresh_seconds:
            with unit_of_work(self.sessions) as session:
                self._index = build_index(read_mostly(session))
            self._index_built = time.monotonic()
        return self._index

    def invalidate_index(self) -> None:
        """Subscriptions, products or channels changed: rebuild the index before the next breach."""
        self._index = None

    def check_target(self, url: str) -> str | None:
        """The form check before each send; the addresses are checked by the pinned transport on connecting."""
        verdict = check_send_target(
            url,
            require_https=self.settings.require_https_webhooks,
            allow_private=self.settings.allow_private_webhook_targets,
        )
        return None if verdict.allowed else verdict.reason

    async def in_database_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work in the pipeline's thread, with a session of its own per unit of work."""
        if self._database_thread is None:
            self._database_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify-db")
        return await asyncio.get_running_loop().run_in_executor(self._database_thread, fn, *args)

    def dispatch(self, breaches: list[tuple[ConsumerRecord, BreachRaised]]) -> list[tuple[ConsumerRecord, str]]:
        """Dispatch breaches in transactions of at most `dispatch_max_pairs` alerts (blocking; the database thread).

        On PostgreSQL up to `dispatch_parallel_transactions` transactions of organisations that do not overlap
        run at once, so one's queries travel while another's pipeline runs; transactions that share an
        organisation run in order. The outbox is woken after each commit, so it sends one transaction's
        notifications while the next is written. Returns the breaches that could not be dispatched, with the
        reason; a database away raises (nothing of the failed transaction is committed, and replaying the ones
        committed changes nothing).
        """
        index = self.index()
        with unit_of_work(self.sessions) as session:  # before the units: some breaches concern no one yet
            open_breaches.remember(session, (b for _, b in breaches))
        by_breach = {id(b): r for r, b in breaches}
        failed: dict[int, tuple[ConsumerRecord, str]] = {}
        units = units_by_pairs(index, [b for _, b in breaches], self.settings.dispatch_max_pairs)
        parallel = self.settings.dispatch_parallel_transactions if self._dialect == "postgresql" else 1
        if parallel <= 1 or len(units) == 1:
            for unit in units:
                failed.update(self._dispatch_unit(index, unit, by_breach))
            return list(failed.values())
        pending = list(units)
        running: dict[Future[dict[int, tuple[ConsumerRecord, str]]], DispatchUnit] = {}
        fault: BaseException | None = None
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="notify-dispatch") as pool:
            while pending or running:
                waiting = list(pending)
                for position, unit in enumerate(waiting):
                    if fault is not None or len(running) >= parallel:
                        break
                    # Those ahead of it come first where they share an organisation, started or not.
                    if any(unit.overlaps(other) for other in (*running.values(), *waiting[:position])):
                        continue
                    pending.remove(unit)
                    running[pool.submit(self._dispatch_unit, index, unit, by_breach)] = unit
                if fault is not None and not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    try:
                        failed.update(future.result())
                    except Exception as exc:  # a database away: let the others end, then raise it
                        fault = fault or exc
        if fault is not None:
            raise fault
        return list(failed.values())

    def _dispatch_unit(
        self, index: SubscriptionIndex, unit: DispatchUnit, by_breach: dict[int, ConsumerRecord]
    ) -> dict[int, tuple[ConsumerRecord, str]]:
        """One dispatch transaction, woken outbox after its commit; breaches that failed alone, by id."""
        started = time.perf_counter()
        failed: dict[int, tuple[ConsumerRecord, str]] = {}
        try:
            with unit_of_work(self.sessions) as session:
                report = dispatch_breaches(
                    session, index, unit.breaches, self.clock(), self.timing, unit, self.inhibit_rules
                )
        except Exception as exc:
            if dependency_of(exc) == "database":
                raise
            # One bad breach must not block the partition: isolate it, quarantine it with the reason.
            log.exception("batch failed; dispatching breaches one by one")
            for breach in unit.breaches:
                try:
                    with unit_of_work(self.sessions) as session:
                        dispatch_breaches(session, index, [breach], self.clock(), self.timing, unit, self.inhibit_rules)
                    self.wake_outbox()
                except Exception as exc_one:
                    if dependency_of(exc_one) == "database":
                        raise
                    failed[id(breach)] = (
                        by_breach[id(breach)],
                        f"dispatch failed: {type(exc_one).__name__}: {exc_one}",
                    )
            return failed
        DISPATCH_SECONDS.observe(time.perf_counter() - started)
        DISPATCH_PAIRS.inc(report.alerts_upserted)
        if report.notifications_created or report.notifications_joined:
            self.wake_outbox()  # committed: sent while the next transaction is written
        return failed

    async def handle_records(self, records: list[ConsumerRecord], producer: EventProducer) -> BatchResult:
        """Decode a batch, dead-letter what is not a breach, dispatch the rest (in the database thread)."""
        result = BatchResult()
        breaches: list[tuple[ConsumerRecord, BreachRaised]] = []
        for record in records:
            try:
                _, event = decode(record.value, BreachRaised)
            except EnvelopeError as exc:
                await producer.dead_letter(
                    record.value or b"", str(exc), source=self.topic, stage=SERVICE, intended_topic=self.topic
                )
                result.dead_lettered += 1
                continue
            assert isinstance(event, BreachRaised)
            breaches.append((record, event))
        if not breaches:
            return result
        # A database away raises here: the caller retries the batch; nothing of it is committed.
        failed = await self.in_database_thread(self.dispatch, breaches)
        for record, reason in failed:
            await producer.dead_letter(
                record.value, reason, source=self.topic, stage=SERVICE, intended_topic=self.topic
            )
        result.breaches = len(breaches) - len(failed)
        result.dead_lettered += len(failed)
        return result

    def _sweep_in_thread(self) -> dict[str, int]:
        index = self.index()
        # The sweep reads every firing alert and rarely writes: it must not hold SQLite's write lock meanwhile.
        with unit_of_work(self.sessions) as session:
            sweep_firing(read_mostly(session), index, self.clock(), self.timing, self.inhibit_rules)
        with unit_of_work(self.sessions) as session:
            caught_up = catch_up(read_mostly(session), index, self.clock(), self.timing, self.inhibit_rules)
        if caught_up.notifications_created or caught_up.notifications_joined:
            self.wake_outbox()
        with unit_of_work(self.sessions) as session:
            return dict(
                session.execute(
                    select(models.Alert.severity, func.count())  # type: ignore[arg-type]
                    .where(models.Alert.status == "firing")
                    .group_by(models.Alert.severity)
                ).all()
            )

    async def sweep(self) -> None:
        """Repeats, expired silences, lifted inhibitions; and the firing-alerts gauge."""
        counts = await self.in_database_thread(self._sweep_in_thread)
        for severity in models.SEVERITIES:
            ALERTS_FIRING.labels(severity).set(counts.get(severity, 0))

    # --- readiness ------------------------------------------------------------------------------

    def _ping_database(self) -> None:
        with self.sessions() as session:
            read_mostly(session).execute(text("SELECT 1"))

    async def database_ready(self) -> str | None:
        """Readiness of the database: it answers, and no loop is waiting out a database fault."""
        if "database" in self.waiting:
            return self.waiting["database"]
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping_database), 5)
        except Exception as exc:  # any failure means not ready; the reason is reported
            return f"database unreachable: {type(exc).__name__}"
        return None

    async def broker_ready(self) -> str | None:
        """Readiness of the broker: it answers a metadata request, and no loop is waiting out a broker fault."""
        if "broker" in self.waiting:
            return self.waiting["broker"]
        return await check_kafka(self.settings.kafka_bootstrap_servers)

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[str | None]]]:
        """The checks /readyz runs for this notifier."""
        return {"database": self.database_ready, "broker": self.broker_ready}

    async def _wait_out(self, loop_name: str, exc: BaseException, failures: int) -> None:
        """Log a fault, say not ready while it lasts, and wait the backoff before the loop tries again."""
        dependency = dependency_of(exc)
        FAULTS.labels(loop_name, dependency).inc()
        delay = FAULT_BACKOFF.delay(failures).total_seconds()
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        if dependency != "notifier":
            self.waiting[dependency] = f"{loop_name} waits out {reason}"
        log.error(
            "fault; waiting it out",
            exc_info=dependency == "notifier",
            extra={
                "loop": loop_name,
                "dependency": dependency,
                "error": reason,
                "failures": failures,
                "retry_in_s": round(delay, 2),
            },
        )
        try:
            await self._pause(delay)
        finally:
            self.waiting.pop(dependency, None)

    # --- the loops ------------------------------------------------------------------------------

    def _consumer(self) -> AIOKafkaConsumer:
        fetch_wait_ms = max(1, round(self.settings.consume_fetch_max_wait_seconds * 1000))
        options: dict[str, Any] = {
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "client_id": "mews-notify",
            "fetch_max_wait_ms": fetch_wait_ms,
            **self.consumer_options,
        }
        return AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.settings.kafka_bootstrap_servers, group_id=self.group_id, **options
        )

    async def consume(self) -> None:
        """Breaches -> database, then commit the offsets; until stopped."""
        consumer = self._consumer()
        producer = EventProducer(
            self.settings.kafka_bootstrap_servers, source=SOURCE, namespace=self.settings.topic_namespace
        )
        await producer.start()
        try:
            await consumer.start()
            failures = 0
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=300, max_records=self.settings.consume_max_records)
                if not batches:
                    continue
                records = [r for tp in sorted(batches, key=lambda t: t.partition) for r in batches[tp]]
                try:
                    result = await self.handle_records(records, producer)
                    await consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in batches.items()})
                except (OperationalError, InterfaceError, DBAPIError, KafkaError) as exc:
                    if dependency_of(exc) == "notifier":
                        raise
                    # A lost membership, a failed commit, a database or broker away: nothing past the committed
                    # offsets counts as done. Read again from there; replayed breaches change nothing.
                    failures += 1
                    REWINDS.labels(type(exc).__name__).inc()
                    await self._wait_out("consume", exc, failures)
                    await self._rewind(consumer)
                    continue
                failures = 0
                self.processed += result.breaches
                await self._observe_lag(consumer, list(batches))
        finally:
            with contextlib.suppress(Exception):  # stopping a consumer of a broker that is away may fail too
                await consumer.stop()
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        """Seek every assigned partition back to its committed offset (the beginning when none is)."""
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        log.warning(
            "consumer rewound to the committed offsets",
            extra={"partitions": sorted(tp.partition for tp in consumer.assignment())},
        )

    async def _observe_lag(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        lag = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - await consumer.position(tp))
        CONSUMER_LAG.labels(SERVICE, topics.BREACHES.name).set(lag)

    @functools.cached_property
    def outbox_wakeup(self) -> OutboxWakeup:
        """Wakes the outbox after an enqueue: this process at once, other replicas through PostgreSQL NOTIFY."""
        bind = self.sessions.kw.get("bind")
        url = (
            bind.url.render_as_string(hide_password=False)
            if bind is not None
            else self.settings.database_url.get_secret_value()
        )
        return OutboxWakeup(url)

    def wake_outbox(self) -> None:
        """Notifications were enqueued and committed: send them now, not at the next poll."""
        self.outbox_wakeup.notify()

    async def deliver(self) -> None:
        """Send what the outbox holds until stopped: woken by enqueues here and elsewhere, polling as the fallback."""
        limits = DeliveryLimits(self.settings.delivery_concurrency, self.settings.delivery_per_target_concurrency)
        async with webhook_client(self.settings, limits) as http:
            worker = OutboxWorker(
                self.sessions,
                http,
                smtp_from(self.settings),
                self.check_target,
                self.settings,
                self.policy,
                self.clock,
                limits=limits,
                wakeup=self.outbox_wakeup,
            )
            listener = asyncio.create_task(self.outbox_wakeup.listen(self._stopping), name="outbox-listen")
            try:
                await worker.run(self._stopping)
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def sweep_forever(self) -> None:
        while not self._stopping.is_set():
            await self._pause(self.sweep_interval_seconds)
            if not self._stopping.is_set():
                await self.sweep()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a loop until stopped; whatever it raises is waited out with backoff and the loop starts again."""
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the process never ends on a fault; each is logged, counted, waited out
                # A loop that ran a while before failing starts its backoff afresh.
                failures = 1 if time.monotonic() - started > 60 else failures + 1
                await self._wait_out(name, exc, failures)

    def _release_leftover_claims(self) -> None:
        with unit_of_work(self.sessions) as session:
            released = release_claims(session, self.clock())
        if released:
            log.warning("released claims of a previous run", extra={"count": released})

    async def run(self) -> None:
        """Consume, deliver and sweep until `stop` (or cancellation); faults are waited out, never fatal."""
        self._stopping.clear()
        if self.sessions.kw.get("bind") is not None and self.sessions.kw["bind"].dialect.name == "sqlite":
            # SQLite means one worker: anything left `sending` died with the previous process.
            await self.in_database_thread(self._release_leftover_claims)
        tasks = [
            asyncio.create_task(self._supervise(name, loop), name=name)
            for name, loop in (("consume", self.consume), ("deliver", self.deliver), ("sweep", self.sweep_forever))
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._database_thread is not None:
                self._database_thread.shutdown(wait=False, cancel_futures=True)
                self._database_thread = None
            if self._engine is not None:
                self._engine.dispose()

    def stop(self) -> None:
        self._stopping.set()
