"""What must not happen on delivery: bad input lost or blocking, redirects followed, private targets reached,
a dead receiver retried forever; and the delivery metrics counting what did happen."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.notify.delivery.outbox import DeliveryPolicy, OutboxWorker
from services.notify.delivery.retry import RetrySchedule
from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.notify.worker import Notifier, smtp_from
from shared import topics
from shared.events import DeadLettered, decode
from tests.eventually import eventually
from tests.integration.notify.world import add_org, add_webhook, breach, notifier_settings, publish, running, subscribe

pytestmark = pytest.mark.integration


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def attempts_of(sessions) -> list[models.DeliveryAttempt]:
    with unit_of_work(sessions) as s:
        return list(s.scalars(select(models.DeliveryAttempt).order_by(models.DeliveryAttempt.attempted_at)))


async def test_unreadable_message_is_dead_lettered_and_the_next_breach_still_delivered(
    kafka_bootstrap, kafka_topics, migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = notifier_settings(kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "After Garbage BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/after"))], material="gallium")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(topics.BREACHES), b"{not json", key=b"gallium")
    finally:
        await producer.stop()

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-after"))
        await eventually(lambda: http_receiver.delivered("/after"), what="the breach after the garbage")

    consumer = AIOKafkaConsumer(
        settings.topic(topics.DEADLETTER), bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    records = [r for msgs in batch.values() for r in msgs]
    assert len(records) == 1
    _, dead = decode(records[0].value, DeadLettered)
    assert dead.stage == "notify"
    assert dead.reason.startswith("not JSON")
    assert dead.original() == b"{not json"


async def test_redirect_is_not_followed_but_retried_at_the_same_url(
    kafka_bootstrap, kafka_topics, migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = notifier_settings(kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Moved BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/moved"))], material="gallium")
    http_receiver.answer("/moved", 302)

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-moved"))
        await eventually(lambda: http_receiver.delivered("/moved"), what="delivery after the redirect")

    assert [r.path for r in http_receiver.requests] == ["/moved", "/moved"]  # never /elsewhere
    first = attempts_of(db_sessions)[0]
    assert (first.outcome, first.status_code) == ("retry", 302)
    assert "http://127.0.0.1:9/elsewhere" in first.error


async def test_loopback_target_is_refused_at_send_time_unless_allowed(
    kafka_bootstrap, kafka_topics, migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = notifier_settings(
        kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox, allow_private_webhook_targets=False
    )
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Sneaky BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/internal"))], material="gallium")

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-internal"))
        await eventually(lambda: attempts_of(db_sessions), what="a refused attempt")

    assert http_receiver.requests == []
    refused = attempts_of(db_sessions)[0]
    assert refused.outcome == "refused"
    assert "127.0.0.1 is loopback" in refused.error


async def test_receiver_failing_every_notification_is_disabled_and_admins_told(
    migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = notifier_settings("127.0.0.1:1", "unused", migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Down BV", admins=("admin@down.test",))
        hook = add_webhook(s, org, http_receiver.url("/down"))
        for n in range(3):
            s.add(
                models.Notification(
                    organisation_id=org.id,
                    channel_id=hook.id,
                    kind="alert",
                    group_key=f"immediate:{hook.id}",
                    payload={"n": n, "alerts": []},
                )
            )
        hook_id = hook.id
    http_receiver.answer("/down", *[503] * 10)
    policy = DeliveryPolicy(
        schedule=RetrySchedule(initial=0.01, max_interval=0.01, jitter=0, max_attempts=2),
        disable_after_failures=2,
        lease=timedelta(seconds=30),
        batch_size=1,
    )
    notifier = Notifier(settings, db_sessions)
    retried_before = sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": "retry"})
    failed_before = sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": "failed"})
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        worker = OutboxWorker(db_sessions, http, smtp_from(settings), notifier.check_target, settings, policy)

        def channel_off() -> bool:
            with unit_of_work(db_sessions) as s:
                return not s.get(models.Channel, hook_id).enabled

        for _ in range(40):
            await worker.run_once()
            if channel_off():
                break
            await asyncio.sleep(0.02)  # rounds driven by hand: the next retry falls due between them
        await worker.run_once()  # sends the admin notice

    with unit_of_work(db_sessions) as s:
        channel = s.get(models.Channel, hook_id)
        by_status = sorted((n.kind, n.status) for n in s.scalars(select(models.Notification)))
    assert channel.enabled is False
    assert channel.disabled_reason.startswith("2 notifications in a row failed")
    assert by_status == [
        ("admin_notice", "delivered"),
        ("alert", "cancelled"),
        ("alert", "failed"),
        ("alert", "failed"),
    ]
    # Two notifications failed after two attempts each; the third was tried at most once before the switch-off.
    tries = len(http_receiver.to("/down"))
    assert 4 <= tries <= 5
    # The last try of each failed notification counts as failed, every other try as a retry.
    assert sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": "failed"}) - failed_before == 2
    assert sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": "retry"}) - retried_before == (
        tries - 2
    )
    [notice] = smtp_inbox.to("admin@down.test")
    assert notice["subject"] == "[mews] Channel disabled: webhook at 127.0.0.1"
    text = notice.get_body(("plain",)).get_content()
    assert "Reason: 2 notifications in a row failed; last: HTTP 503" in text


async def test_delivery_metrics_count_deliveries_and_time_from_breach(
    kafka_bootstrap, kafka_topics, migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = notifier_settings(kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Measured BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/measured"))], material="gallium")
    delivered = sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": "delivered"})
    timed = sample("mews_notify_breach_to_delivery_seconds_count", {"channel": "webhook"})
    sent = sample("mews_notify_pipeline_decisions_total", {"stage": "dedup", "decision": "send"})

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-measured"))
        await eventually(lambda: http_receiver.delivered("/measured"), what="delivery")
        await eventually(
            lambda: sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": "delivered"}) > delivered,
            what="the delivery counted",
        )

    assert sample("mews_notify_breach_to_delivery_seconds_count", {"channel": "webhook"}) == timed + 1
    assert sample("mews_notify_pipeline_decisions_total", {"stage": "dedup", "decision": "send"}) == sent + 1
    assert sample("mews_notify_outbox_depth", {"channel": "webhook"}) == 0


async def test_breach_to_delivery_counts_from_the_breach_reaching_the_notifier_not_from_event_time(
    kafka_bootstrap, kafka_topics, migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    # A breach about an observation three weeks old (a late or backfilled input) is still news when it comes.
    settings = notifier_settings(kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Backfill BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/backfill"))], material="gallium")
    count = sample("mews_notify_breach_to_delivery_seconds_count", {"channel": "webhook"})
    total = sample("mews_notify_breach_to_delivery_seconds_sum", {"channel": "webhook"})

    async with running(settings, db_sessions):
        before = datetime.now(UTC)
        await publish(settings, breach("fp-backfill", observed_at=before - timedelta(days=21)))
        await eventually(
            lambda: sample("mews_notify_breach_to_delivery_seconds_count", {"channel": "webhook"}) > count,
            what="the delivery timed",
        )
        took = (datetime.now(UTC) - before).total_seconds()

    assert http_receiver.delivered("/backfill")
    measured = sample("mews_notify_breach_to_delivery_seconds_sum", {"channel": "webhook"}) - total
    assert 0 <= measured <= took


async def test_the_last_failed_attempt_says_the_delivery_gave_up(
    migrated_database_url, db_sessions, smtp_inbox, http_receiver, caplog
):
    settings = notifier_settings("127.0.0.1:1", "unused", migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Given Up BV")
        hook = add_webhook(s, org, http_receiver.url("/gone-quiet"))
        s.add(
            models.Notification(
                organisation_id=org.id,
                channel_id=hook.id,
                kind="alert",
                group_key=f"immediate:{hook.id}",
                payload={"alerts": []},
            )
        )
    http_receiver.answer("/gone-quiet", 503, 503)
    policy = DeliveryPolicy(
        schedule=RetrySchedule(initial=0.01, max_interval=0.01, jitter=0, max_attempts=2),
        disable_after_failures=10,
        lease=timedelta(seconds=30),
        batch_size=1,
    )
    notifier = Notifier(settings, db_sessions)
    caplog.set_level("INFO", logger="services.notify.delivery.outbox")
    counted = {
        outcome: sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": outcome})
        for outcome in ("retry", "failed")
    }
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        worker = OutboxWorker(db_sessions, http, smtp_from(settings), notifier.check_target, settings, policy)
        for _ in range(40):
            await worker.run_once()
            if len(attempts_of(db_sessions)) == 2:
                break
            await asyncio.sleep(0.02)  # rounds driven by hand: the retry falls due between them

    assert [(a.outcome, a.status_code) for a in attempts_of(db_sessions)] == [("retry", 503), ("failed", 503)]
    logged = [(r.outcome, r.state) for r in caplog.records if r.getMessage() == "delivery attempt"]
    assert logged == [("retry", "retry"), ("failed", "failed")]
    assert {
        outcome: sample("mews_notify_deliveries_total", {"channel": "webhook", "outcome": outcome}) - before
        for outcome, before in counted.items()
    } == {"retry": 1, "failed": 1}
