"""The local broker is a real Kafka 4 with auto-creation off, and topics come from the one declaration."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from shared import topics
from shared.events import DeadLettered, decode
from shared.kafka import EventProducer, check_kafka, ensure_topics

pytestmark = pytest.mark.integration


async def test_declared_topics_exist_with_their_partitions_and_cleanup_policy(kafka_bootstrap, namespace):
    created = await ensure_topics(kafka_bootstrap, namespace)
    assert sorted(created) == sorted(t.qualified(namespace) for t in topics.ALL)
    assert await ensure_topics(kafka_bootstrap, namespace) == []  # idempotent

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topics.INDICATORS.qualified(namespace)])
        assert len(described[0]["partitions"]) == topics.INDICATORS.partitions
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topics.INDICATORS.qualified(namespace))]
        )
        values = {c[0]: c[1] for c in configs[0].resources[0][4]}
        assert values["cleanup.policy"] == "compact"
    finally:
        await admin.close()


async def test_a_topic_the_broker_refuses_is_an_error_naming_it_not_reported_created(kafka_bootstrap, namespace):
    refused = topics.Topic("mews.refused.v1", 1, 1000, cleanup_policy="sometimes")
    fine = topics.Topic("mews.fine.v1", 1, 1000)
    with pytest.raises(KafkaError, match=f"{namespace}.mews.refused.v1"):
        await ensure_topics(kafka_bootstrap, namespace, [fine, refused])
    # What the broker accepted exists: the next call creates only what is still missing, and says so.
    assert await ensure_topics(kafka_bootstrap, namespace, [fine]) == []


async def test_broker_refuses_to_auto_create_an_undeclared_topic(kafka_bootstrap, namespace):
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises(KafkaError):
            await asyncio.wait_for(producer.send_and_wait(f"{namespace}.mews.typo.v1", b"x"), 10)
    finally:
        await producer.stop()


async def test_dead_letter_lands_with_reason_and_original_bytes(kafka_bootstrap, kafka_topics):
    producer = EventProducer(kafka_bootstrap, source="mews/test", namespace=kafka_topics)
    await producer.start()
    try:
        await producer.dead_letter(
            b"<rss>\xff", "invalid encoding", source="feed-x", stage="ingest", intended_topic="mews.news.v1"
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topics.DEADLETTER.qualified(kafka_topics),
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    _, letter = decode(message.value, expected=DeadLettered)
    assert letter.reason == "invalid encoding"
    assert letter.original() == b"<rss>\xff"
    assert message.key == b"feed-x"


async def test_readiness_reports_an_unreachable_cluster():
    assert await check_kafka("127.0.0.1:1") is not None
