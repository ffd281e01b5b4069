"""Batched sends on the real broker land where `AIOKafkaProducer.send` puts them, each once, acknowledged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared import topics
from shared.catalog import load_catalog
from shared.events import PriceObserved, decode
from shared.kafka import EventProducer, ensure_topics, event_id_for

pytestmark = pytest.mark.integration


async def partitions_by_key(bootstrap: str, topic: str, expect: int) -> dict[bytes, set[int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(topics.PRICES.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen: dict[bytes, set[int]] = {}
        count = 0
        for _ in range(100):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                for record in records:
                    seen.setdefault(record.key, set()).add(tp.partition)
                    count += 1
            if count >= expect:
                break
        assert count == expect
        return seen
    finally:
        await consumer.stop()


async def test_a_batch_lands_on_the_partitions_send_would_choose_each_event_once(kafka_bootstrap, kafka_topics):
    materials = [m.id for m in load_catalog().materials]
    day = datetime(2020, 1, 1, tzinfo=UTC)
    # More than one record batch per partition (16 KiB each), so full batches are handed over mid-way.
    events = [
        PriceObserved(
            material=materials[i % len(materials)],
            source="test",
            price=100 + i,
            currency="USD",
            unit="kg",
            observed_at=day + timedelta(days=i),
        )
        for i in range(600)
    ]
    producer = EventProducer(kafka_bootstrap, source="tests/ingest", namespace=kafka_topics)
    await producer.start()
    try:
        acks = await producer.send_acknowledged(
            [(topics.PRICES, e, None, event_id_for(e.dedup_key())) for e in events], within=30
        )
    finally:
        await producer.stop()
    assert acks == [True] * len(events)

    reference = f"r{uuid.uuid4().hex[:10]}"
    await ensure_topics(kafka_bootstrap, reference, [topics.PRICES])
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await plain.start()
    try:
        for e in events:
            await plain.send_and_wait(topics.PRICES.qualified(reference), b"{}", key=e.subject().encode())
    finally:
        await plain.stop()

    batched = await partitions_by_key(kafka_bootstrap, topics.PRICES.qualified(kafka_topics), len(events))
    assert batched == await partitions_by_key(kafka_bootstrap, topics.PRICES.qualified(reference), len(events))
    assert all(len(p) == 1 for p in batched.values())  # a material's events stay on one partition, in order


async def test_batched_events_decode_with_their_ids_in_order_per_material(kafka_bootstrap, kafka_topics):
    day = datetime(2021, 1, 1, tzinfo=UTC)
    events = [
        PriceObserved(
            material="gallium",
            source="test",
            price=200 + i,
            currency="USD",
            unit="kg",
            observed_at=day + timedelta(days=i),
        )
        for i in range(300)
    ]
    producer = EventProducer(kafka_bootstrap, source="tests/ingest", namespace=kafka_topics)
    await producer.start()
    try:
        assert all(
            await producer.send_acknowledged(
                [(topics.PRICES, e, None, event_id_for(e.dedup_key())) for e in events], within=30
            )
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topics.PRICES.qualified(kafka_topics), p) for p in range(topics.PRICES.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        received = []
        for _ in range(100):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                received.extend(decode(r.value) for r in records)
            if len(received) >= len(events):
                break
    finally:
        await consumer.stop()
    assert [event for _, event in received] == events
    assert [envelope["id"] for envelope, _ in received] == [event_id_for(e.dedup_key()) for e in events]
