"""The notifier under a crisis fan-out and faults, on the real broker and databases: a rebalance in the middle of
a 5,000-alert batch, PostgreSQL stopped for 20 s mid-stream, and a backlog holding several transitions of one
alert. Nothing is lost, nothing is sent twice, the process never ends."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.notify.api.app import create_app
from services.notify.store import models
from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work
from services.notify.worker import Notifier
from shared import topics
from shared.events import BreachStatus
from shared.kafka import EventProducer
from tests.eventually import eventually
from tests.integration.notify.world import (
    add_marker_subscriber,
    add_org,
    add_webhook,
    breach,
    notifier_settings,
    pass_marker,
    publish,
    running,
    subscribe,
    verified,
)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 20  # how long a dependency is away: longer than any timeout or retry interval here


def delivered_pairs(receiver) -> Counter[tuple[str, str, str]]:
    """(path, fingerprint, status) of every alert in every delivered notification, counted once per webhook id."""
    seen: dict[str, bytes] = {}
    for r in receiver.requests:
        if r.status == 200:
            seen.setdefault(r.headers["webhook-id"], r.body)
    paths = {r.headers["webhook-id"]: r.path for r in receiver.requests}
    return Counter(
        (paths[i], a["fingerprint"], a["status"]) for i, body in seen.items() for a in json.loads(body)["alerts"]
    )


async def test_firing_resolved_firing_in_one_backlog_delivers_each_transition_in_order(
    kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox, db_sessions, http_receiver
):
    settings = notifier_settings(kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Backlog BV")
        hook = add_webhook(s, org, http_receiver.url("/backlog"))
        subscribe(s, org, [hook], material="gallium")
        add_marker_subscriber(s, http_receiver)
        secret = hook.secret
    now = datetime.now(UTC)
    first = breach("fp-flap", observed_at=now - timedelta(minutes=3))
    again = breach("fp-flap", observed_at=now - timedelta(minutes=1))
    # The backlog is on the topic before the notifier starts: one fetch holds all three.
    await publish(
        settings, first, breach("fp-flap", status=BreachStatus.RESOLVED, observed_at=now - timedelta(minutes=2)), again
    )

    async with running(settings, db_sessions):
        await eventually(lambda: len(http_receiver.delivered("/backlog")) >= 3, within=30, what="three notifications")
        # A marker group begun after the third, past a group interval: a wrong extra one would have come first.
        await pass_marker(settings, http_receiver, "backlog", rules=2)

    bodies = [verified(r, secret) for r in http_receiver.delivered("/backlog")]
    assert [(b["kind"], [a["status"] for a in b["alerts"]]) for b in bodies] == [
        ("alert", ["firing"]),
        ("resolved", ["resolved"]),
        ("alert", ["firing"]),
    ]
    # The resolution says when the episode it ends began firing; the new firing begins its own.
    assert [datetime.fromisoformat(b["alerts"][0]["starts_at"]) for b in bodies] == [
        first.starts_at,
        first.starts_at,
        again.starts_at,
    ]
    with unit_of_work(db_sessions) as s:
        [entry] = s.query(models.NotificationLogEntry).filter_by(fingerprint="fp-flap").all()
        [alert] = s.query(models.Alert).filter_by(fingerprint="fp-flap").all()
    assert (entry.last_status, alert.status) == ("firing:warning", "firing")


@pytest.mark.slow
async def test_a_rebalance_in_a_5000_alert_batch_loses_nothing_and_sends_nothing_twice(
    kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox, db_sessions, http_receiver
):
    organisations, breaches = 50, 100
    # Transactions of 500 alerts: the batch spans ten of them, and the rebalance lands between two.
    settings = notifier_settings(
        kafka_bootstrap,
        kafka_topics,
        migrated_database_url,
        smtp_inbox,
        group_wait_seconds=0,
        group_interval_seconds=0,
        dispatch_max_pairs=500,
        consume_max_records=breaches,
    )
    with unit_of_work(db_sessions) as s:
        for o in range(organisations):
            org = add_org(s, f"Crisis {o} BV")
            subscribe(s, org, [add_webhook(s, org, http_receiver.url(f"/crisis/{o}"))], material="gallium")
    await publish(settings, *(breach(f"fp-crisis-{i}", rule=f"rule_{i}") for i in range(breaches)))
    group_id = f"mews-notify-{kafka_topics}"
    options = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}

    rewinds_before = _rewinds()

    def alerts_stored() -> int:
        with unit_of_work(db_sessions) as s:
            return s.query(models.Alert).count()

    async with running(settings, db_sessions, group_id=group_id, consumer_options=options, lease=timedelta(seconds=30)):
        await eventually(alerts_stored, within=60, what="the batch under way")
        # Another member joins and leaves: the group rebalances while the notifier works through the batch.
        intruder = AIOKafkaConsumer(
            settings.topic(topics.BREACHES),
            bootstrap_servers=kafka_bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            **options,
        )
        await intruder.start()
        await eventually(lambda: intruder.assignment(), within=30, what="the intruder given partitions: a rebalance")
        await intruder.stop()

        def all_pairs() -> bool:
            return len(delivered_pairs(http_receiver)) == organisations * breaches

        await eventually(all_pairs, within=120, what="every pair delivered")
        await publish(settings, breach("fp-after", rule="after"))
        await eventually(
            lambda: sum(1 for (_, fp, _) in delivered_pairs(http_receiver) if fp == "fp-after") == organisations,
            within=30,
            what="the consumer still consuming",
        )

    counts = delivered_pairs(http_receiver)
    assert len(counts) == organisations * (breaches + 1)
    assert set(counts.values()) == {1}  # every pair exactly once
    with unit_of_work(db_sessions) as s:
        assert s.query(models.Alert).count() == organisations * (breaches + 1)
        assert {n.status for n in s.query(models.Notification)} == {"delivered"}
    print(f"consumer rewinds during the test: {_rewinds() - rewinds_before:.0f}")


def _rewinds() -> float:
    from prometheus_client import REGISTRY

    return sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "mews_notify_consumer_rewinds"
        for s in m.samples
        if s.name.endswith("_total")
    )


@pytest.mark.slow
async def test_postgresql_stopped_for_20_s_mid_stream_loses_no_transition_and_the_notifier_never_exits(
    kafka_bootstrap, kafka_topics, smtp_inbox, http_receiver, stoppable_postgres
):
    url = stoppable_postgres.migrated_database("notify")
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    orgs = 3
    with unit_of_work(sessions) as s:
        for o in range(orgs):
            org = add_org(s, f"Outage {o} BV")
            subscribe(s, org, [add_webhook(s, org, http_receiver.url(f"/outage/{o}"))], material="gallium")
    settings = notifier_settings(
        kafka_bootstrap, kafka_topics, url, smtp_inbox, group_wait_seconds=0.2, group_interval_seconds=0.5
    )
    fingerprints = 35
    expected = {
        (f"/outage/{o}", f"fp-out-{i}", status)
        for o in range(orgs)
        for i in range(fingerprints)
        for status in ("firing", "resolved")
    }
    notifier = Notifier(
        settings, sessions, index_refresh_seconds=0, sweep_interval_seconds=0.3, lease=timedelta(seconds=2)
    )
    app = create_app(settings, engine=engine, readiness=notifier.readiness_checks())
    task = asyncio.create_task(notifier.run())
    producer = EventProducer(kafka_bootstrap, source="mews/scoring", namespace=kafka_topics)
    await producer.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify") as api:
            assert (await api.get("/readyz")).status_code == 200
            for i in range(fingerprints):
                if i == 10:
                    stoppable_postgres.stop()
                    stopped = asyncio.get_running_loop().time()
                    answer = await api.get("/readyz")
                    assert answer.status_code == 503
                    assert "database" in answer.json()["failures"]
                    assert "broker" not in answer.json()["failures"]
                observed = datetime.now(UTC)
                for b in (
                    breach(f"fp-out-{i}", rule=f"rule_{i}", observed_at=observed),
                    breach(
                        f"fp-out-{i}",
                        rule=f"rule_{i}",
                        status=BreachStatus.RESOLVED,
                        observed_at=observed + timedelta(seconds=1),
                    ),
                ):
                    await producer.send(topics.BREACHES, b, key=b.fingerprint)
                await asyncio.sleep(0.3)  # a stream, not a burst: the outage falls in the middle of it
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (asyncio.get_running_loop().time() - stopped)))
            assert not task.done()
            stoppable_postgres.start()

            try:
                await eventually(
                    lambda: set(delivered_pairs(http_receiver)) >= expected,
                    within=90,
                    what="every transition delivered",
                )
            except AssertionError:
                missing = sorted(expected - set(delivered_pairs(http_receiver)))
                with unit_of_work(sessions) as s:
                    outbox = Counter((n.status, n.attempts) for n in s.query(models.Notification))
                raise AssertionError(
                    f"{len(missing)} transitions not delivered, e.g. {missing[:6]}; "
                    f"outbox (status, attempts): {dict(outbox)}"
                ) from None
            await eventually(lambda: notifier.waiting == {}, within=30, what="no fault waited out")
            answer = await api.get("/readyz")
            assert answer.status_code == 200, answer.text
            assert answer.json()["checks"] == ["broker", "database"]
            assert not task.done()
    finally:
        await producer.stop()
        notifier.stop()
        await asyncio.wait_for(task, 30)
        engine.dispose()
    assert set(delivered_pairs(http_receiver)) == expected


@pytest.mark.slow
@pytest.mark.long
async def test_the_broker_away_for_20_s_is_waited_out_and_nothing_is_lost(
    stoppable_kafka, namespace, tmp_path, smtp_inbox, http_receiver
):
    from shared.kafka import ensure_topics

    # The broker's side of the notifier is the same on either database: SQLite only.
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    engine = create_db_engine(url)
    db_sessions = session_factory(engine)
    await ensure_topics(stoppable_kafka.bootstrap, namespace)
    settings = notifier_settings(stoppable_kafka.bootstrap, namespace, url, smtp_inbox)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Broker Outage BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/broker"))], material="gallium")
    notifier = Notifier(settings, db_sessions, index_refresh_seconds=0, sweep_interval_seconds=0.3)
    app = create_app(settings, readiness=notifier.readiness_checks())
    task = asyncio.create_task(notifier.run())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify") as api:
            await publish(settings, *(breach(f"fp-before-{i}", rule=f"rule_{i}") for i in range(3)))
            await eventually(lambda: len(delivered_pairs(http_receiver)) == 3, within=60, what="before the outage")
            stoppable_kafka.stop()
            answer = await api.get("/readyz")
            assert answer.status_code == 503
            assert "broker" in answer.json()["failures"]
            await asyncio.sleep(OUTAGE_SECONDS)
            assert not task.done()
            stoppable_kafka.start()
            await publish(settings, *(breach(f"fp-after-{i}", rule=f"rule_{i}") for i in range(3)))
            await eventually(lambda: len(delivered_pairs(http_receiver)) == 6, within=90, what="after the outage")
            await eventually(lambda: notifier.waiting == {}, within=30, what="no fault waited out")
            assert (await api.get("/readyz")).status_code == 200
            assert not task.done()
    finally:
        notifier.stop()
        await asyncio.wait_for(task, 60)
        engine.dispose()
    assert set(delivered_pairs(http_receiver).values()) == {1}
