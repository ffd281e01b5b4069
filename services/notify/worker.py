"""The notifier's running parts: the breaches consumer, the outbox worker and the repeat sweep, in one loop.

The consumer commits a Kafka offset only after the alerts and outbox rows of its batch are committed to the
database, so a crash replays breaches (which de-duplication absorbs) and never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.notify.delivery.email import SmtpConfig
from services.notify.delivery.outbox import DeliveryLimits, DeliveryPolicy, OutboxWorker, release_claims
from services.notify.delivery.retry import RetrySchedule
from services.notify.delivery.wakeup import OutboxWakeup
from services.notify.matching import SubscriptionIndex, build_index
from services.notify.outbound import check_webhook_target
from services.notify.pipeline.alert import Timing
from services.notify.pipeline.dispatch import dispatch_breaches, sweep_firing
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import create_db_engine, session_factory, unit_of_work
from shared import topics
from shared.events import BreachRaised, EnvelopeError, decode
from shared.kafka import EventProducer
from shared.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)
SERVICE = "notify"
SOURCE = "mews/notify"


ALERTS_FIRING = Gauge("mews_notify_alerts_firing", "Alerts firing now, over every organisation", ["severity"])


def timing_from(settings: NotifySettings) -> Timing:
    """The group timers the settings ask for."""
    from datetime import time as clock_time

    return Timing(group_wait=timedelta(seconds=settings.group_wait_seconds),
                  group_interval=timedelta(seconds=settings.group_interval_seconds),
                  repeat_interval=timedelta(seconds=settings.repeat_interval_seconds),
                  digest_at=clock_time(settings.digest_hour_utc, 0))


def policy_from(settings: NotifySettings, lease: timedelta | None = None) -> DeliveryPolicy:
    """The retry schedule and channel-disabling threshold the settings ask for."""
    schedule = RetrySchedule(initial=settings.retry_initial_seconds, multiplier=settings.retry_multiplier,
                             max_interval=settings.retry_max_interval_seconds, jitter=settings.retry_jitter,
                             max_attempts=settings.retry_max_attempts)
    lease = lease or timedelta(seconds=max(60.0, 3 * settings.webhook_timeout_seconds))
    return DeliveryPolicy(schedule=schedule, disable_after_failures=settings.channel_disable_after_failures,
                          lease=lease)


def smtp_from(settings: NotifySettings) -> SmtpConfig:
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                      starttls=settings.smtp_starttls, user=settings.smtp_user,
                      password=settings.smtp_password.get_secret_value(), timeout=settings.smtp_timeout_seconds)


@dataclass
class BatchResult:
    breaches: int = 0
    dead_lettered: int = 0


class Notifier:
    """Consumes breaches into alerts and outbox rows, and sends the outbox; `run` until `stop`."""

    def __init__(self, settings: NotifySettings, sessions: sessionmaker[Session] | None = None, *,
                 group_id: str = "mews-notify", index_refresh_seconds: float = 5.0,
                 sweep_interval_seconds: float = 15.0, lease: timedelta | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self._engine = None
        if sessions is None:
            self._engine = create_db_engine(settings.database_url)
            sessions = session_factory(self._engine)
        self.sessions = sessions
        self.group_id = group_id
        self.topic = settings.topic(topics.BREACHES)
        self.timing = timing_from(settings)
        self.policy = policy_from(settings, lease)
        self.index_refresh_seconds = index_refresh_seconds
        self.sweep_interval_seconds = sweep_interval_seconds
        self.clock = clock or models.utcnow
        self._index: SubscriptionIndex | None = None
        self._index_built = 0.0
        self._stopping = asyncio.Event()
        self.processed = 0

    # --- the pieces, callable alone -------------------------------------------------------------

    def index(self) -> SubscriptionIndex:
        """The subscription index, rebuilt when older than the refresh period (subscriptions change via the API)."""
        if self._index is None or time.monotonic() - self._index_built >= self.index_refresh_seconds:
            with unit_of_work(self.sessions) as session:
                self._index = build_index(session)
            self._index_built = time.monotonic()
        return self._index

    def invalidate_index(self) -> None:
        """Subscriptions, products or channels changed: rebuild the index before the next breach."""
        self._index = None

    def check_target(self, url: str) -> str | None:
        verdict = check_webhook_target(url, require_https=self.settings.require_https_webhooks,
                                       allow_private=self.settings.allow_private_webhook_targets)
        return None if verdict.allowed else verdict.reason

    async def handle_records(self, records: list[ConsumerRecord], producer: EventProducer) -> BatchResult:
        """Decode a batch, dead-letter what is not a breach, dispatch the rest in one transaction."""
        result = BatchResult()
        breaches: list[tuple[ConsumerRecord, BreachRaised]] = []
        for record in records:
            try:
                _, event = decode(record.value, BreachRaised)
            except EnvelopeError as exc:
                await producer.dead_letter(record.value or b"", str(exc), source=self.topic, stage=SERVICE,
                                           intended_topic=self.topic)
                result.dead_lettered += 1
                continue
            assert isinstance(event, BreachRaised)
            breaches.append((record, event))
        if not breaches:
            return result
        index = self.index()
        try:
            with unit_of_work(self.sessions) as session:
                dispatch_breaches(session, index, [b for _, b in breaches], self.clock(), self.timing)
            self.wake_outbox()
            result.breaches = len(breaches)
        except OperationalError:
            raise  # the database is away: the caller retries the batch, nothing is committed
        except Exception:
            # One bad breach must not block the partition: isolate it, quarantine it with the reason.
            log.exception("batch failed; dispatching breaches one by one")
            for record, breach in breaches:
                try:
                    with unit_of_work(self.sessions) as session:
                        dispatch_breaches(session, index, [breach], self.clock(), self.timing)
                    result.breaches += 1
                except OperationalError:
                    raise
                except Exception as exc:
                    await producer.dead_letter(record.value, f"dispatch failed: {type(exc).__name__}: {exc}",
                                               source=self.topic, stage=SERVICE, intended_topic=self.topic)
                    result.dead_lettered += 1
        return result

    async def sweep(self) -> None:
        """Repeats, expired silences, lifted inhibitions; and the firing-alerts gauge."""
        with unit_of_work(self.sessions) as session:
            sweep_firing(session, self.index(), self.clock(), self.timing)
            counts = dict(session.execute(select(models.Alert.severity, func.count())
                                          .where(models.Alert.status == "firing")
                                          .group_by(models.Alert.severity)).all())
        for severity in models.SEVERITIES:
            ALERTS_FIRING.labels(severity).set(counts.get(severity, 0))

    # --- the loops ------------------------------------------------------------------------------

    async def consume(self) -> None:
        """Breaches -> database, then commit the offsets; until stopped."""
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                    group_id=self.group_id, enable_auto_commit=False,
                                    auto_offset_reset="earliest", client_id="mews-notify")
        producer = EventProducer(self.settings.kafka_bootstrap_servers, source=SOURCE,
                                 namespace=self.settings.topic_namespace)
        await producer.start()
        await consumer.start()
        try:
            while not self._stopping.is_set():
                # Dispatch runs on the event loop (one SQLite writer); small batches keep the API and outbox responsive.
                batches = await consumer.getmany(timeout_ms=300, max_records=100)
                if not batches:
                    continue
                records = [r for tp in sorted(batches, key=lambda t: t.partition) for r in batches[tp]]
                try:
                    result = await self.handle_records(records, producer)
                except OperationalError as exc:
                    log.error("database unavailable; batch will be retried", extra={"error": str(exc)[:300]})
                    for tp, msgs in batches.items():
                        consumer.seek(tp, msgs[0].offset)
                    await asyncio.sleep(1.0)
                    continue
                await consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in batches.items()})
                self.processed += result.breaches
                await self._observe_lag(consumer, list(batches))
        finally:
            await consumer.stop()
            await producer.stop()

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
        url = bind.url.render_as_string(hide_password=False) if bind is not None else self.settings.database_url
        return OutboxWakeup(url)

    def wake_outbox(self) -> None:
        """Notifications were enqueued and committed: send them now, not at the next poll."""
        self.outbox_wakeup.notify()

    async def deliver(self) -> None:
        """Send what the outbox holds until stopped: woken by enqueues here and elsewhere, polling as the fallback."""
        limits = DeliveryLimits(self.settings.delivery_concurrency, self.settings.delivery_per_target_concurrency)
        # One client for every send: connections to a receiver are kept alive between notifications.
        pool = httpx.Limits(max_connections=limits.concurrency, max_keepalive_connections=limits.concurrency,
                            keepalive_expiry=30.0)
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_seconds, limits=pool,
                                     follow_redirects=False, trust_env=False) as http:
            worker = OutboxWorker(self.sessions, http, smtp_from(self.settings), self.check_target,
                                  self.settings, self.policy, self.clock, limits=limits, wakeup=self.outbox_wakeup)
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

    async def run(self) -> None:
        """Consume, deliver and sweep until `stop` (or cancellation)."""
        self._stopping.clear()
        if self.sessions.kw.get("bind") is not None and self.sessions.kw["bind"].dialect.name == "sqlite":
            # SQLite means one worker: anything left `sending` died with the previous process.
            with unit_of_work(self.sessions) as session:
                released = release_claims(session, self.clock())
            if released:
                log.warning("released claims of a previous run", extra={"count": released})
        tasks = [asyncio.create_task(coro, name=name) for name, coro in
                 (("consume", self.consume()), ("deliver", self.deliver()), ("sweep", self.sweep_forever()))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._engine is not None:
                self._engine.dispose()

    def stop(self) -> None:
        self._stopping.set()
