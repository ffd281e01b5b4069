"""Guards on the faust 0.15 / aiokafka 0.14 internals that services/scoring/faust_fixes.py relies on, one or more per
workaround, and the workarounds' own behaviour on faust's real objects (never started); no broker.

When a guard fails after an upgrade, re-read the faust (or aiokafka) code it names, decide whether the workaround is
still needed and still right, bring it in line, and only then change the expected values here.
`DeclaredTableManager.on_start` is faust's `TableManager.on_start` without its one-second sleep, and
`seek_to_committed` is aiokafka's with one offset request for all partitions.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import Fetcher as AIOKafkaFetcher
from aiokafka.structs import OffsetAndMetadata
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import current_event
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.tables.table import Table
from faust.transport.consumer import Consumer, Fetcher
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from mode.utils.collections import ManagedUserDict
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from services.scoring import faust_fixes
from services.scoring.app import create_app
from services.scoring.faust_fixes import (
    DeclaredTableManager,
    committed_offset,
    processing,
    seek_to_committed,
    stranded,
)
from services.scoring.settings import ScoringSettings


def _positions(source: str, *steps: str) -> list[int]:
    """Where each step first appears in the source (-1 when it does not)."""
    return [source.find(step) for step in steps]


def _in_order(source: str, *steps: str) -> bool:
    positions = _positions(source, *steps)
    return -1 not in positions and positions == sorted(positions)


def test_every_workaround_has_a_guard_here():
    guarded = {
        name
        for line in Path(__file__).read_text().splitlines()
        if line.startswith("# guards ")
        for name in line.removeprefix("# guards ").split(", ")
    }
    workarounds = {
        name
        for name, value in vars(faust_fixes).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == faust_fixes.__name__
    }
    assert len(workarounds) >= 9
    assert workarounds - guarded == set()


# guards DeclaredTableManager
def test_faust_table_manager_start_is_a_sleep_then_what_the_override_does():
    lines = [line.strip() for line in inspect.getsource(TableManager.on_start).splitlines()]
    body = [line for line in lines if line and not line.startswith(("async def", '"""'))]
    assert body == [
        "await self.sleep(1.0)",
        "if not self.should_stop:",
        "await self._update_channels()",
        "await self.recovery.start()",
    ]


def test_the_scoring_app_starts_its_tables_without_the_sleep(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    assert type(app.tables) is DeclaredTableManager
    assert "sleep" not in inspect.getsource(DeclaredTableManager.on_start)


def test_a_table_declared_after_the_tables_started_is_still_refused(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    app.tables._tables_finalized.set()  # what `_update_channels` does first when the manager starts
    with pytest.raises(RuntimeError, match="Too late to add tables"):
        app.Table("late-table", default=None)


# guards seek_to_committed, seek_committed_in_one_request
def test_aiokafka_seek_to_committed_is_the_one_partition_at_a_time_loop_the_app_replaces():
    source = inspect.getsource(AIOKafkaConsumer.seek_to_committed)
    assert "offset = await self.committed(tp)" in source
    assert "self._fetcher.seek_to(tp, offset)" in source
    assert "faust.transport.drivers.aiokafka" in AIOKafkaConsumerThread.__module__
    assert "self._ensure_consumer().seek_to_committed" in inspect.getsource(AIOKafkaConsumerThread.seek_to_committed)


def test_the_scoring_consumer_seeks_with_one_offset_request(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    thread = app.consumer._thread
    assert thread.seek_to_committed.__qualname__.startswith("seek_committed_in_one_request")


class _Coordinator:
    def __init__(self, committed: dict) -> None:
        self.committed = committed
        self.requests: list[set] = []

    async def fetch_committed_offsets(self, partitions):
        self.requests.append(set(partitions))
        return {tp: OffsetAndMetadata(o, "") for tp, o in self.committed.items() if tp in partitions}


class _Fetcher:
    def __init__(self) -> None:
        self.seeks: dict = {}

    def seek_to(self, tp, offset: int) -> None:
        self.seeks[tp] = offset


async def test_every_assigned_partition_is_asked_for_at_once_and_sought_as_aiokafka_would():
    a, b, c = TopicPartition("prices", 0), TopicPartition("prices", 1), TopicPartition("news", 0)
    consumer = AIOKafkaConsumer.__new__(AIOKafkaConsumer)  # never started: only what the seek reads is set
    consumer._subscription = type("Assigned", (), {"assigned_partitions": lambda self: {a, b, c}})()
    consumer._coordinator = _Coordinator({a: 42, b: 0})
    consumer._fetcher = _Fetcher()
    assert await seek_to_committed(consumer) == {a: 42, b: 0, c: None}
    assert consumer._coordinator.requests == [{a, b, c}]
    assert consumer._fetcher.seeks == {a: 42}  # offset 0 and no offset: left where the reset policy puts them


# guards install_intake
def test_the_fetcher_drains_through_the_consumer_attribute_the_intake_replaces():
    assert "await consumer._drain_messages(self)" in inspect.getsource(Fetcher._fetcher.fun)
    assert "self._consumer = self._new_consumer()" in inspect.getsource(faust.App.consumer.fget)


# guards committed_offset
def test_faust_keeps_the_committed_offsets_it_sought_to_and_committed_in_the_consumer_attribute_read():
    assert "self._committed_offset.update(committed_offsets)" in inspect.getsource(Consumer.perform_seek)
    assert "self._committed_offset.update(committable_offsets)" in inspect.getsource(Consumer._commit_offsets)


def test_committed_offset_is_none_until_faust_knows_one(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    tp = TP("mews.prices.v1", 3)
    assert committed_offset(app, tp) is None
    app.consumer._committed_offset[tp] = 12
    assert committed_offset(app, tp) == 12


# guards processing
def test_a_table_write_takes_its_partition_from_the_current_event_that_processing_binds():
    # persist writes `table[material] = record` outside the stream, inside `processing(event)`: the changelog
    # partition and (rocksdb://) the store partition come from the current event.
    assert _in_order(
        inspect.getsource(ManagedUserDict.__setitem__), "self.on_key_set(key, value)", "self.data[key] = value"
    )
    assert "self.send_changelog(self.partition_for_key(key), key, value)" in inspect.getsource(Table.on_key_set)
    assert "event = current_event()" in inspect.getsource(Table.partition_for_key)
    assert "partition = event.message.partition" in inspect.getsource(RocksDBStore._set)
    assert "_current_event.get(None)" in inspect.getsource(current_event)

    class Message:
        partition = 7

    class Event:
        message = Message()

    event = Event()
    assert current_event() is None
    with processing(event):  # type: ignore[arg-type]
        assert current_event() is event
    assert current_event() is None


# guards shorten_fetch_wait
def test_faust_hard_codes_the_fetch_wait_and_aiokafka_sends_the_fetcher_attribute_the_fix_sets():
    assert "fetch_max_wait_ms=1500," in inspect.getsource(AIOKafkaConsumerThread._create_worker_consumer)
    assert "self._consumer = self._create_consumer(" in inspect.getsource(AIOKafkaConsumerThread.on_start)
    assert "self._fetch_max_wait_ms," in inspect.getsource(AIOKafkaFetcher._get_actions_per_node)


async def test_the_running_fetcher_is_told_the_shorter_wait_at_each_assignment(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path, fetch_max_wait_seconds=0.02))
    aiokafka_consumer = AIOKafkaConsumer.__new__(AIOKafkaConsumer)  # never started: only its fetcher is read
    aiokafka_consumer._fetcher = AIOKafkaFetcher.__new__(AIOKafkaFetcher)
    aiokafka_consumer._fetcher._fetch_max_wait_ms = 1500
    app.consumer._thread._consumer = aiokafka_consumer

    await app.on_partitions_assigned.send(set())

    assert aiokafka_consumer._fetcher._fetch_max_wait_ms == 20


# guards hold_inputs_until_seeked
@pytest.mark.parametrize("method", [Recovery.on_recovery_completed, Recovery._resume_streams])
def test_faust_signals_rebalance_complete_before_it_resumes_seeks_and_empties_the_input_queues(method):
    source = inspect.getsource(method)
    steps = (
        "on_rebalance_complete.send()",
        "resume_partitions(",
        "perform_seek()",
        "flow_control.resume()",
        "resume_flow()",
    )
    found = dict(zip(steps, _positions(source, *steps), strict=True))
    assert -1 not in found.values(), found
    assert list(found.values()) == sorted(found.values()), f"faust changed the order of its resume sequence: {found}"


def test_resuming_flow_control_empties_the_queues_it_manages():
    flow = FlowControlEvent(initially_suspended=False)
    queue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    queue.put_nowait("fetched before the resume")

    flow.resume()

    assert queue.empty()


def test_the_fetcher_returns_nothing_while_the_consumer_flow_is_stopped():
    source = inspect.getsource(AIOKafkaConsumerThread._fetch_records)
    assert re.search(r"if not self\.consumer\.flow_active:\s*return \{\}", source), source


def test_faust_commits_past_one_missing_offset_ahead_of_the_acked_ones(tmp_path: Path):
    # The reason a dropped input is lost rather than re-read: with offset 10 committed (next to read) and only 11
    # and 12 acked, faust commits 13. Should this start returning None, a dropped input would stall the commit
    # instead, and re-reading would need no help from us.
    consumer = create_app(ScoringSettings(data_dir=tmp_path)).consumer
    tp = consumer._new_topicpartition("mews.prices.v1", 0)
    consumer._committed_offset[tp] = 10
    consumer._acked[tp] = [11, 12]
    consumer._acked_index[tp] = {11, 12}

    assert consumer._new_offset(tp) == 13


async def test_the_scoring_app_stops_fetching_when_faust_signals_the_end_of_recovery(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    app.consumer.resume_flow()

    await app.on_rebalance_complete.send()

    assert not app.consumer.flow_active


# guards stranded, restart_stranded_recovery
def test_faust_restarts_a_restore_when_its_start_signal_is_set_and_drops_records_fetched_while_flow_is_stopped():
    restart = inspect.getsource(Recovery.__dict__["_restart_recovery"].fun)
    assert "self.signal_recovery_start.clear()" in restart
    assert "_seek_offsets" in restart
    getmany = inspect.getsource(Consumer.getmany)
    # The stranding: records fetched while the flow is stopped are dropped, and the seek that follows knows only
    # committed offsets, which changelog partitions do not have.
    assert re.search(r"else:\s*self\.log\.dev\(\s*\"getmany called while flow not active", getmany), getmany
    assert "await self.perform_seek()" in getmany


P3, P4 = "changelog-3", "changelog-4"


def test_a_restore_fetched_past_its_end_with_nothing_applied_for_the_hold_is_stranded():
    progress = {P3: (-1, 31, 32), P4: (10, 21, 22)}
    since = {P3: (-1, 100.0), P4: (10, 103.0)}

    assert stranded(progress, since, now=106.0, hold=6.0) == [P3]
    assert stranded(progress, since, now=109.0, hold=6.0) == [P3, P4]


@pytest.mark.parametrize(
    ("progress", "since"),
    [
        ({P3: (-1, 31, 20)}, {P3: (-1, 0.0)}),  # still fetching: the records are on their way
        ({P3: (-1, 31, None)}, {P3: (-1, 0.0)}),  # no position yet (seek pending)
        ({P3: (31, 31, 32)}, {P3: (31, 0.0)}),  # everything applied: the restore is finishing
        ({P3: (12, 31, 32)}, {P3: (11, 0.0)}),  # applied moved since the last check: records are arriving
        ({P3: (-1, 31, 32)}, {}),  # first look: no history to judge by
    ],
)
def test_a_restore_that_may_still_progress_is_left_alone(progress, since):
    assert stranded(progress, since, now=100.0, hold=6.0) == []
