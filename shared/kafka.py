"""Kafka plumbing every service shares: topic creation from the one declaration, and a producer.

Broker auto-creation is off, so `ensure_topics` is the only way a topic comes to exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared import topics as declared
from shared.events import DeadLettered, Event, encode

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, namespace: str = "", wanted: Iterable[declared.Topic] = declared.ALL,
                        replication_factor: int = 1) -> list[str]:
    """Create every declared topic that does not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mews-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.qualified(namespace) not in existing]
        if not missing:
            return []
        new = [NewTopic(t.qualified(namespace), t.partitions, replication_factor, topic_configs=t.config())
               for t in missing]
        with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race; that is fine
            await admin.create_topics(new)
        created = [t.qualified(namespace) for t in missing]
        log.info("topics created", extra={"topics": created})
        return created
    finally:
        await admin.close()


async def check_kafka(bootstrap: str) -> str | None:
    """Readiness: None when the cluster answers a metadata request, else the reason."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mews-readiness", request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return None
    except Exception as exc:  # any failure means not ready; the reason is reported
        return f"kafka unreachable: {type(exc).__name__}"
    finally:
        await admin.close()


def event_id_for(dedup_key: str) -> str:
    """A deterministic CloudEvents id, so the same observation fetched twice carries the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews:{dedup_key}"))


class EventProducer:
    """An idempotent producer of CloudEvents; waits for every write to be acknowledged by all replicas."""

    def __init__(self, bootstrap: str, *, source: str, namespace: str = "") -> None:
        self.source = source
        self.namespace = namespace
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                          linger_ms=5, client_id=source.replace("/", "-"))

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: declared.Topic, event: Event, *, key: str | None = None,
                   event_id: str | None = None) -> None:
        """Write one event and wait until the broker has it."""
        await self._producer.send_and_wait(
            topic.qualified(self.namespace), encode(event, source=self.source, event_id=event_id),
            key=(key if key is not None else event.subject()).encode())

    async def send_many(self, items: list[tuple[declared.Topic, Event, str | None, str | None]]) -> None:
        """Write a batch (topic, event, key, event_id) and wait until the broker has all of it."""
        futures = []
        for topic, event, key, event_id in items:
            futures.append(await self._producer.send(
                topic.qualified(self.namespace), encode(event, source=self.source, event_id=event_id),
                key=(key if key is not None else event.subject()).encode()))
        if futures:
            await asyncio.gather(*futures)

    async def dead_letter(self, raw: bytes | str, reason: str, *, source: str, stage: str,
                          intended_topic: str = "") -> None:
        """Quarantine input that could not be used, with the reason and the original bytes."""
        event = DeadLettered.of(raw, reason, source=source, stage=stage, intended_topic=intended_topic)
        await self.send(declared.DEADLETTER, event, key=source)
        log.warning("dead-lettered", extra={"source": source, "stage": stage, "reason": reason[:300]})
