"""Guards on the faust 0.15.3 internals that services/scoring/intake.py copies and relies on, and the intake's own
behaviour on faust's real consumer (never started: its `_wait_next_records` returns a fixed fetch); no broker.

When a guard fails after a faust upgrade, compare the new `Consumer._drain_messages`, `Consumer.getmany` and
Stream's per-event checks with `BatchIntake.drain_into`, `BatchIntake._fetch` and `BatchIntake.current`, bring the
copy in line, and only then update the pins here.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.streams import Stream
from faust.transport.consumer import Consumer, Fetcher
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message

from services.scoring.app import create_app
from services.scoring.intake import BatchIntake
from services.scoring.settings import ScoringSettings
from shared import topics as declared

# sha256 of what the intake copies from faust 0.15.3: Consumer._drain_messages (BatchIntake.drain_into),
# Consumer.getmany (BatchIntake._fetch) and Consumer.ack (BatchIntake.ack), and the aiokafka driver's _to_message
# that the fetch calls.
DRAIN_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
GETMANY_SHA256 = "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e"
ACK_SHA256 = "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f"
TO_MESSAGE_SHA256 = "7c24f6511b2fcef7cbfe73526e78de033bfe0df211f1fd30509d699c9deb6ce4"


def _sha256(function: Any) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def test_faust_is_the_version_whose_drain_loop_and_fetch_the_intake_copies():
    assert faust.__version__ == "0.15.3"
    assert _sha256(Consumer._drain_messages) == DRAIN_SHA256
    assert _sha256(Consumer.getmany) == GETMANY_SHA256
    assert _sha256(Consumer.ack) == ACK_SHA256
    assert _sha256(AIOKafkaConsumer._to_message) == TO_MESSAGE_SHA256


def test_the_intake_skips_a_batch_where_faust_stream_skips_an_event():
    source = inspect.getsource(Stream._py_aiter)
    assert "not self.app.flow_control.is_active()" in source
    assert "message.generation_id != self.app.consumer_generation_id" in source
    assert "add_unacked(message)" in source  # tracked once taken from the queue, as BatchIntake.track does


def _message(tp: TP, offset: int, generation: int = 0) -> Message:
    return Message(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp, generation_id=generation)


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    return create_app(ScoringSettings(data_dir=tmp_path, batch_max_inputs=3))


def _intake(app: faust.App) -> BatchIntake:
    drain = app.consumer._drain_messages
    intake = drain.__closure__ and next(
        c.cell_contents for c in drain.__closure__ if isinstance(c.cell_contents, BatchIntake)
    )
    assert isinstance(intake, BatchIntake)
    return intake


def _record(tp: TP, offset: int) -> ConsumerRecord:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def _fetching(consumer: Any, fetcher: Fetcher, records: dict[TP, list[ConsumerRecord]], monkeypatch: Any) -> None:
    """Make the consumer's next fetch return `records` (and stop the drain loop after it)."""

    async def wait_next_records(wait: float) -> tuple[dict[TP, list[ConsumerRecord]], None]:
        fetcher._stopped.set()  # one fetch, then the drain loop ends
        return records, None

    monkeypatch.setattr(consumer, "_wait_next_records", wait_next_records)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 100 + len(records[tp]))  # the broker's, as the fetch saw it


async def test_input_records_come_in_batches_in_fetch_order_and_other_topics_through_faust_callback(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
):
    consumer = app.consumer
    prices_4, prices_5 = TP(declared.PRICES.qualified(""), 4), TP(declared.PRICES.qualified(""), 5)
    changelog = TP("mews-scoring-material-state-changelog", 4)
    fetched = {
        prices_4: [_record(prices_4, n) for n in range(4)],
        changelog: [_record(changelog, 0)],
        prices_5: [_record(prices_5, n) for n in (0, 1, 0)],  # 0 again: read already
    }
    fetcher = Fetcher(app)
    order: list[tuple[str, int]] = []

    async def callback(message: Message) -> None:
        order.append(("callback", message.offset))

    _fetching(consumer, fetcher, fetched, monkeypatch)
    monkeypatch.setattr(consumer, "callback", callback)
    intake = _intake(app)
    app.flow_control.resume()  # as faust does once the assignment is recovered

    await asyncio.wait_for(consumer._drain_messages(fetcher), 5)

    batches = []
    while not intake.queue.empty():
        batches.append([(m.partition, m.offset) for m in intake.queue.get_nowait()])
    # At most batch_max_inputs each, cut where the changelog record came.
    assert batches == [[(4, 0), (4, 1), (4, 2)], [(4, 3)], [(5, 0), (5, 1)]]
    assert order == [("callback", 0)]
    assert consumer._read_offset[prices_4] == 3
    assert consumer._read_offset[prices_5] == 1
    assert consumer._read_offset[changelog] == 0
    assert app.monitor.tp_end_offsets == {prices_4: 104, changelog: 101, prices_5: 103}  # tracked as faust does


async def test_records_fetched_while_the_flow_is_stopped_are_dropped_and_the_consumer_seeks_back(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
):
    consumer = app.consumer
    prices = TP(declared.PRICES.qualified(""), 4)
    fetcher = Fetcher(app)
    seeks: list[bool] = []

    async def perform_seek() -> None:
        seeks.append(True)

    _fetching(consumer, fetcher, {prices: [_record(prices, 0)]}, monkeypatch)
    monkeypatch.setattr(consumer, "perform_seek", perform_seek)
    intake = _intake(app)
    app.flow_control.resume()
    consumer.flow_active = False  # as faust's consumer is while a rebalance's recovery has it stopped

    await asyncio.wait_for(consumer._drain_messages(fetcher), 5)

    assert intake.queue.empty()
    assert seeks == [True]
    assert prices not in consumer._read_offset or consumer._read_offset[prices] is None


async def test_a_fetch_stops_where_the_group_generation_changes(app: faust.App, monkeypatch: pytest.MonkeyPatch):
    consumer = app.consumer
    prices = TP(declared.PRICES.qualified(""), 4)
    changelog = TP("mews-scoring-material-state-changelog", 4)
    fetcher = Fetcher(app)

    async def callback(message: Message) -> None:
        app.consumer_generation_id += 1  # a rebalance began while faust's callback had the record

    fetched = {changelog: [_record(changelog, 0)], prices: [_record(prices, 0), _record(prices, 1)]}
    _fetching(consumer, fetcher, fetched, monkeypatch)
    monkeypatch.setattr(consumer, "callback", callback)
    intake = _intake(app)
    app.flow_control.resume()

    await asyncio.wait_for(consumer._drain_messages(fetcher), 5)

    assert intake.queue.empty()  # nothing after the change is handed over, as faust's getmany stops there
    assert consumer._read_offset[changelog] == 0
    assert prices not in consumer._read_offset or consumer._read_offset[prices] is None


async def test_a_batch_of_an_earlier_generation_or_fetched_before_a_suspension_is_not_scored(app: faust.App):
    intake = _intake(app)
    prices = TP(declared.PRICES.qualified(""), 0)
    app.flow_control.resume()
    app.consumer_generation_id = 2
    assert intake.current([_message(prices, 0, generation=2)])
    assert not intake.current([_message(prices, 0, generation=1)])
    app.flow_control.suspend()
    assert not intake.current([_message(prices, 0, generation=2)])


async def test_a_resume_clears_the_batches_waiting_like_faust_channel_queues(app: faust.App):
    intake = _intake(app)
    prices = TP(declared.PRICES.qualified(""), 0)
    app.flow_control.resume()
    await intake.queue.put([_message(prices, 0)])
    app.flow_control.suspend()
    app.flow_control.resume()
    assert intake.queue.empty()


async def test_tracked_inputs_are_what_faust_waits_for_until_they_are_acked(app: faust.App):
    intake = _intake(app)
    prices = TP(declared.PRICES.qualified(""), 0)
    batch = [_message(prices, 0), _message(prices, 1)]
    app.topics._acking_topics.add(prices.topic)  # as the conductor does for the agent's topics at subscription
    app.consumer._committed_offset[prices] = 0
    intake.track(batch)
    assert set(app.consumer._unacked_messages) == set(batch)
    for message in batch:
        app.consumer.ack(message)
    assert not app.consumer._unacked_messages
    assert app.consumer._new_offset(prices) == 2


def _acked_state(app: faust.App, messages: list[Message]) -> tuple:
    consumer = app.consumer
    return (
        {tp: list(offsets) for tp, offsets in consumer._acked.items() if offsets},
        {tp: set(offsets) for tp, offsets in consumer._acked_index.items() if offsets},
        consumer._n_acked,
        sorted((m.partition, m.offset) for m in consumer._unacked_messages),
        [m.acked for m in messages],
    )


def test_the_intake_acks_many_inputs_as_faust_acks_each(tmp_path: Path):
    prices = TP(declared.PRICES.qualified(""), 0)
    other = TP("not-an-agent-topic", 0)  # acks not enabled for it: only marked acked
    apps = [create_app(ScoringSettings(data_dir=tmp_path / name, batch_max_inputs=3)) for name in ("faust", "intake")]
    batches = []
    for app in apps:
        app.topics._acking_topics.add(prices.topic)
        app.consumer._committed_offset[prices] = 4
        acked_before = _message(prices, 7)
        # 3 lies below the committed offset; the second 6 is another message of an offset acked already.
        batch = [_message(prices, n) for n in (5, 6, 6, 3)] + [acked_before, _message(other, 1)]
        _intake(app).track(batch)
        app.consumer.ack(acked_before)
        batches.append(batch)
    faust_app, intake_app = apps
    for message in batches[0]:
        faust_app.consumer.ack(message)
    _intake(intake_app).ack(batches[1])

    assert _acked_state(intake_app, batches[1]) == _acked_state(faust_app, batches[0])
    acked, _, n_acked, unacked, marked = _acked_state(intake_app, batches[1])
    assert acked == {prices: [7, 5, 6]}
    assert n_acked == 3
    assert all(marked)
    assert unacked == [(0, 1), (0, 3), (0, 6)]  # what faust's own ack leaves tracked, for its cleanup to drop
