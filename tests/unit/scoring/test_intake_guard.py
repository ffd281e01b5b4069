"""Guards on the faust 0.15.3 internals that services/scoring/intake.py copies and relies on, and the intake's own
behaviour on faust's real consumer (never started: `getmany` is replaced by a fixed fetch); no broker.

When a guard fails after a faust upgrade, compare the new `Consumer._drain_messages` and Stream's per-event checks
with `BatchIntake.drain_into` and `BatchIntake.current`, bring the copy in line, and only then update the pins here.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from pathlib import Path

import faust
import pytest
from faust.streams import Stream
from faust.transport.consumer import Consumer, Fetcher
from faust.types import TP, Message

from services.scoring.app import create_app
from services.scoring.intake import BatchIntake
from services.scoring.settings import ScoringSettings
from shared import topics as declared

# sha256 of faust 0.15.3's Consumer._drain_messages, the loop BatchIntake.drain_into copies.
DRAIN_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


def test_faust_is_the_version_whose_drain_loop_the_intake_copies():
    assert faust.__version__ == "0.15.3"
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == DRAIN_SHA256


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


async def test_input_records_come_in_batches_in_fetch_order_and_other_topics_through_faust_callback(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
):
    consumer = app.consumer
    prices = TP(declared.PRICES.qualified(""), 4)
    changelog = TP("mews-scoring-material-state-changelog", 4)
    fetched = [(prices, _message(prices, n)) for n in range(4)] + [(changelog, _message(changelog, 0))]
    fetched += [(prices, _message(prices, 4)), (prices, _message(prices, 2))]  # 2 again: read already
    fetcher = Fetcher(app)
    order: list[tuple[str, int]] = []

    async def getmany(**_: float):  # getmany(timeout=...)
        fetcher._stopped.set()  # one fetch, then the drain loop ends
        for tp, message in fetched:
            yield tp, message

    async def callback(message: Message) -> None:
        order.append(("callback", message.offset))

    monkeypatch.setattr(consumer, "getmany", getmany)
    monkeypatch.setattr(consumer, "callback", callback)
    intake = _intake(app)
    app.flow_control.resume()  # as faust does once the assignment is recovered

    await asyncio.wait_for(consumer._drain_messages(fetcher), 5)

    batches = []
    while not intake.queue.empty():
        batches.append([m.offset for m in intake.queue.get_nowait()])
    assert batches == [[0, 1, 2], [3], [4]]  # at most batch_max_inputs each, cut where the changelog record came
    assert order == [("callback", 0)]
    assert consumer._read_offset[prices] == 4
    assert consumer._read_offset[changelog] == 0


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
