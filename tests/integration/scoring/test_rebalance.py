"""No input is lost or applied twice while scoring workers join and leave the group under a running producer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.scoring.agents import INPUTS
from services.scoring.engine import MaterialState
from shared import topics as declared
from shared.events import IndicatorSnapshot, encode
from shared.kafka import event_id_for
from tests.eventually import eventually_blocking

from .conftest import MATERIALS, collect, price, run

pytestmark = pytest.mark.integration

EVERY_SECONDS = 0.04  # 25 inputs a second: several land in every phase of a rebalance and its table recovery


@dataclass
class Sent:
    """Where each produced input landed: (material, day) -> (partition, offset)."""

    at: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    error: BaseException | None = None


class ContinuousProducer(threading.Thread):
    """Publishes one price after another (materials in turn, one day later each round) until stopped."""

    def __init__(self, bootstrap: str, namespace: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.namespace = namespace
        self.sent = Sent()
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.sent.error = exc

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            n = 0
            while not self.halt.is_set():
                material, day = MATERIALS[n % len(MATERIALS)], n // len(MATERIALS)
                # Small moves around 100 keep breach traffic low; every applied input yields one snapshot.
                event = price(material, day, 100.0 + (day % 4))
                value = encode(event, source="tests/scoring", event_id=event_id_for(event.dedup_key()))
                meta = await producer.send_and_wait(
                    declared.PRICES.qualified(self.namespace), value, key=material.encode()
                )
                self.sent.at[(material, day)] = (meta.partition, meta.offset)
                n += 1
                await asyncio.sleep(EVERY_SECONDS)
        finally:
            await producer.stop()

    def finish(self) -> Sent:
        self.halt.set()
        self.join(10)
        return self.sent


async def latest_states(bootstrap: str, namespace: str) -> dict[str, MaterialState]:
    """The last value per material of the table's changelog: the state a recovering worker restores."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        name = f"{namespace}.mews-scoring-material-state-changelog"
        partitions = [TopicPartition(name, p) for p in range(declared.MATERIAL_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        states: dict[str, MaterialState] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for m in messages:
                    states[json.loads(m.key)] = MaterialState.from_dict(json.loads(m.value))
        return states
    finally:
        await consumer.stop()


def _owned(worker) -> float:
    return worker.metric("mews_scoring_partitions_assigned")


def _wait_owned(workers, check, what: str, wait: float = 40) -> tuple[float, ...]:
    def owned() -> tuple[float, ...] | None:
        shares = tuple(_owned(w) for w in workers)
        return shares if check(shares) else None

    return eventually_blocking(owned, within=wait, every=0.3, what=what)


def test_every_input_produced_across_a_join_and_a_leave_is_applied_exactly_once(
    kafka_topics, kafka_bootstrap, start_worker
):
    inputs = len(INPUTS) * declared.MATERIAL_PARTITIONS  # every input topic's partitions
    a = start_worker(kafka_topics, name="a")
    producer = ContinuousProducer(kafka_bootstrap, kafka_topics)
    producer.start()
    try:
        time.sleep(1)  # a scores alone for a moment
        b = start_worker(kafka_topics, name="b")  # joins: both workers rebalance while inputs keep coming
        _wait_owned((a, b), lambda s: all(s) and sum(s) == inputs, "the join settled, both workers with partitions")
        time.sleep(1)  # both score for a moment
        assert a.stop() == 0  # leaves: b rebalances and recovers a's table partitions while inputs keep coming
        _wait_owned((b,), lambda s: s == (inputs,), "the survivor given every partition")
        time.sleep(1)  # the survivor scores alone for a moment
    finally:
        sent = producer.finish()
    assert sent.error is None, f"producer failed: {sent.error!r}"
    produced = Counter(m for m, _ in sent.at)

    # Each applied input yields exactly one snapshot and a re-read one (recognised by its id) none, so per material
    # the snapshot count equals the input count only if nothing was skipped and nothing applied twice.
    def complete(msgs) -> bool:
        return Counter(e.material for _, e in msgs if isinstance(e, IndicatorSnapshot)) >= produced

    snaps = run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, complete, wait=30))
    applied = Counter(e.material for _, e in snaps if isinstance(e, IndicatorSnapshot))
    assert applied == produced, "snapshots per material differ from inputs: " + ", ".join(
        f"{m} {applied[m]} of {produced[m]}" for m in MATERIALS if applied[m] != produced[m]
    )

    # The survivor saw every offset of every partition it scored after the leave.
    assert b.metric("mews_scoring_input_gaps_total") == 0, b.tail()

    # And the state the group would recover holds every input's CloudEvents id, once.
    states = run(latest_states(kafka_bootstrap, kafka_topics))
    held = Counter(i for state in states.values() for s in state.series.values() for i in s.ids)
    ids = {event_id_for(price(m, d, 1.0).dedup_key()): (m, d) for m, d in sent.at}
    missing = sorted(ids[i] for i in ids if held[i] != 1)
    assert not missing, f"{len(missing)} of {len(ids)} inputs not held once in the table: " + ", ".join(
        f"{m} day {d} (partition, offset {sent.at[(m, d)]})" for m, d in missing
    )
    assert len(ids) > 100
