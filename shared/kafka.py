"""Kafka plumbing every service shares: topic creation from the one declaration, and a producer.

Broker auto-creation is off, so `ensure_topics` is the only way a topic comes to exist.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from shared import topics as declared
from shared.events import DeadLettered, Event, encode

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, namespace: str = "", wanted: Iterable[declared.Topic] = declared.ALL, replication_factor: int = 1
) -> list[str]:
    """Create every declared topic that does not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mews-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.qualified(namespace) not in existing]
        if not missing:
            return []
        new = [
            NewTopic(t.qualified(namespace), t.partitions, replication_factor, topic_configs=t.config())
            for t in missing
        ]
        response = await admin.create_topics(new)
        created = []
        # The answer carries an error per topic and raises none: read each one.
        for name, code, *message in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:  # exists: another process (or a lagging listing) won the race
                error = for_code(code)
                raise error(f"creating topic {name}: {message[0] if message and message[0] else error.description}")
        if created:
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


# Bytes per record batch, for ingest's producer and scoring's. aiokafka's default (16 KiB) cut a push of 1,000
# prices into 29 batches over 6 partitions, and a partition's next full batch waited until the one before had left
# in a request of its own (7 such waits per push); half a MiB keeps it at one batch per partition, under the
# broker's default limit of 1 MiB per batch.
MAX_BATCH_BYTES = 512 * 1024
# The hash of the namespace and "mews:", taken once: each id copies it and hashes only its key.
_ID_PREFIX = hashlib.sha1(uuid.NAMESPACE_URL.bytes + b"mews:", usedforsecurity=False)
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 4122: the top bits 10


@functools.lru_cache(maxsize=4096)  # keys are materials and sources: few, each hashed once in pure Python
def _key_hash(key: bytes) -> int:
    """The partitioning hash of aiokafka's (and Java's) default partitioner."""
    return murmur2(key) & 0x7FFFFFFF


def event_id_for(dedup_key: str) -> str:
    """A deterministic CloudEvents id, so the same observation fetched twice carries the same id.

    The name-based UUID (RFC 4122 version 5) of `mews:<key>` in the URL namespace, as `uuid.uuid5` makes it,
    without building a UUID object: ingest computes one per event.
    """
    hashed = _ID_PREFIX.copy()
    hashed.update(dedup_key.encode())
    h = hashed.hexdigest()
    # The version (5) and variant bits set on the hex digits themselves: half the cost of a bytearray round trip.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


Outgoing = tuple[declared.Topic, Event, str | None, str | None]  # topic, event, key (default: subject), event id


@dataclass
class Submission:
    """A batch handed to `EventProducer.submit`: its record batches with the items each carries, its deadline."""

    owner: EventProducer
    producer: AIOKafkaProducer | None
    batches: list[tuple[asyncio.Future, list[int]]]
    count: int
    deadline: float

    async def acknowledged(self) -> list[bool]:
        """Per item, whether the broker acknowledged it by the deadline.

        What is not acknowledged by then is abandoned for good: the producer is replaced, so a batch that
        aiokafka would retry until the broker returns (an idempotent producer never expires one) is never
        written behind the caller's back. Only a request already on the wire when the time ran out may still
        land; it carries the same CloudEvents ids as any retry, so consumers drop the repeat.
        """
        loop = asyncio.get_running_loop()
        futures = [future for future, _ in self.batches]
        if futures:
            await asyncio.wait(futures, timeout=max(0.0, self.deadline - loop.time()))
        acknowledged = [False] * self.count
        for future, indexes in self.batches:
            # future.exception() also retrieves a failure, so none is reported as never retrieved
            if future.done() and not future.cancelled() and future.exception() is None:
                for index in indexes:
                    acknowledged[index] = True
        if self.producer is not None and not all(acknowledged):
            self.owner._abandon(self.producer)
        return acknowledged


class EventProducer:
    """An idempotent producer of CloudEvents; waits for every write to be acknowledged by all replicas."""

    def __init__(self, bootstrap: str, *, source: str, namespace: str = "") -> None:
        self.source = source
        self.namespace = namespace
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None  # None until started, and once abandoned
        self._starting = asyncio.Lock()
        self._retiring: set[asyncio.Task] = set()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=MAX_BATCH_BYTES,
            client_id=self.source.replace("/", "-"),
        )

    async def start(self, topics: Iterable[declared.Topic] = ()) -> None:
        """Connect now, so a broker that cannot be reached fails start-up rather than the first send.

        `topics` are looked up at once: later metadata requests (and `check`) then ask for these topics only,
        not for every topic of the cluster.
        """
        producer = await self._running()
        for topic in topics:
            await producer.partitions_for(topic.qualified(self.namespace))

    async def check(self) -> str | None:
        """Readiness: None when the broker answers this producer's metadata request, else the reason."""
        try:
            producer = await asyncio.wait_for(self._running(), 5)
            if not await asyncio.wait_for(producer.client.force_metadata_update(), 5):
                return "kafka did not answer a metadata request"
            return None
        except Exception as exc:  # any failure means not ready; the reason is reported
            return f"kafka unreachable: {type(exc).__name__}"

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._retiring:  # abandoned producers closing; one stuck on an unreachable broker must not hold us
            await asyncio.wait(self._retiring, timeout=10)

    async def send(
        self, topic: declared.Topic, event: Event, *, key: str | None = None, event_id: str | None = None
    ) -> None:
        """Write one event and wait until the broker has it."""
        producer = await self._running()
        await producer.send_and_wait(
            topic.qualified(self.namespace),
            encode(event, source=self.source, event_id=event_id),
            key=(key if key is not None else event.subject()).encode(),
        )

    async def send_acknowledged(self, items: Sequence[Outgoing], *, within: float) -> list[bool]:
        """Write a batch (topic, event, key, event_id); per item, whether the broker acknowledged it in time."""
        return await (await self.submit(items, within=within)).acknowledged()

    async def submit(self, items: Sequence[Outgoing], *, within: float) -> Submission:
        """Hand a batch (topic, event, key, event_id) to the producer; its acknowledgements are awaited apart.

        Submitting returns once every item is in a record batch queued for the broker (or the time is up),
        so a caller can prepare its next batch while this one travels. `Submission.acknowledged` then says,
        per item, whether the broker acknowledged it within `within` seconds of this call.
        """
        loop = asyncio.get_running_loop()
        submission = Submission(self, None, [], len(items), loop.time() + within)
        try:
            async with asyncio.timeout_at(submission.deadline):
                submission.producer = await self._running()
                await self._fill_batches(submission.producer, items, submission.batches)
        except TimeoutError:
            pass
        except (KafkaError, OSError) as exc:  # could not start, or abandoned meanwhile: the rest is not sent
            log.warning("kafka send refused", extra={"error": repr(exc)})
        return submission

    async def _fill_batches(
        self, producer: AIOKafkaProducer, items: Sequence[Outgoing], submitted: list[tuple[asyncio.Future, list[int]]]
    ) -> None:
        """Encode items straight into record batches, one per partition, each handed over as soon as it is full.

        Per message this costs a fraction of `AIOKafkaProducer.send`; partitions are chosen as its default
        partitioner does (murmur2 of the key), so every key lands where `send` would have put it.
        """
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], tuple[BatchBuilder, list[int]]] = {}
        written_at = datetime.now(UTC).isoformat()  # one CloudEvents time for the batch: the clock once, not per event

        async def submit(name: str, partition: int) -> None:
            builder, indexes = open_batches.pop((name, partition))
            builder.close()  # no `send()` of anyone else may join a batch whose items this call answers for
            submitted.append((await producer.send_batch(builder, name, partition=partition), indexes))

        # Where a (topic, key) goes, found once per batch: a batch names the same few materials over and over.
        routes: dict[tuple[str, str], tuple[tuple[str, int], bytes]] = {}
        for index, (topic, event, key, event_id) in enumerate(items):
            route_key = (topic.name, key if key is not None else event.subject())
            route = routes.get(route_key)
            if route is None:
                name = topic.qualified(self.namespace)
                if name not in partitions:
                    partitions[name] = sorted(await producer.partitions_for(name))
                key_bytes = route_key[1].encode()
                choices = partitions[name]
                route = routes[route_key] = ((name, choices[_key_hash(key_bytes) % len(choices)]), key_bytes)
            (name, partition), key_bytes = route
            value = encode(event, source=self.source, event_id=event_id, written_at=written_at)
            slot = open_batches.get((name, partition))
            if slot is not None and slot[0].append(key=key_bytes, value=value, timestamp=None) is not None:
                slot[1].append(index)
                continue
            if slot is not None:  # full: hand it over, start the next
                await submit(name, partition)
            builder = producer.create_batch()
            builder.append(key=key_bytes, value=value, timestamp=None)  # an empty batch takes any one record
            open_batches[(name, partition)] = (builder, [index])
        for name, partition in list(open_batches):
            await submit(name, partition)

    async def _running(self) -> AIOKafkaProducer:
        """The current producer; a new one is started first if none is (yet, or since a batch was abandoned)."""
        async with self._starting:
            if self._producer is None:
                producer = self._new_producer()
                try:
                    await producer.start()
                except BaseException:
                    self._retire(producer)
                    raise
                self._producer = producer
            return self._producer

    def _abandon(self, producer: AIOKafkaProducer) -> None:
        """Drop everything `producer` holds unacknowledged; the next send starts a fresh producer."""
        old = self._producer
        if old is None or old is not producer:
            return  # already abandoned by a concurrent batch
        self._producer = None
        # aiokafka offers no way to discard queued batches: stopping its sender task ends every retry, and
        # failing the batches answers whoever still waits on them. (Checked against aiokafka 0.14.)
        sender, accumulator = old._sender, old._message_accumulator
        if sender is not None and sender.sender_task is not None:
            sender.sender_task.cancel()
        if accumulator is not None:
            accumulator.fail_all(KafkaTimeoutError("abandoned: not acknowledged in time"))
        self._retire(old)
        log.warning("kafka producer abandoned its unacknowledged writes")

    def _retire(self, producer: AIOKafkaProducer) -> None:
        task = asyncio.create_task(producer.stop())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def dead_letter(
        self, raw: bytes | str, reason: str, *, source: str, stage: str, intended_topic: str = ""
    ) -> None:
        """Quarantine input that could not be used, with the reason and the original bytes."""
        event = DeadLettered.of(raw, reason, source=source, stage=stage, intended_topic=intended_topic)
        await self.send(declared.DEADLETTER, event, key=source)
        log.warning("dead-lettered", extra={"source": source, "stage": stage, "reason": reason[:300]})
