"""Guards on the faust 0.15.3 / aiokafka 0.14 start-up that services/scoring/app.py shortens; no broker.

`DeclaredTableManager.on_start` is faust's `TableManager.on_start` without its one-second sleep, and
`seek_to_committed` is aiokafka's with one offset request for all partitions. When a guard fails after an upgrade,
compare the new code with the replacement and bring the replacement in line first.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.tables import TableManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from services.scoring.app import DeclaredTableManager, create_app, seek_to_committed
from services.scoring.settings import ScoringSettings


def test_faust_table_manager_start_is_a_sleep_then_what_the_override_does():
    lines = [line.strip() for line in inspect.getsource(TableManager.on_start).splitlines()]
    body = [line for line in lines if line and not line.startswith(("async def", '"""'))]
    assert body == ["await self.sleep(1.0)", "if not self.should_stop:", "await self._update_channels()",
                    "await self.recovery.start()"]


def test_the_scoring_app_starts_its_tables_without_the_sleep(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    assert type(app.tables) is DeclaredTableManager
    assert "sleep" not in inspect.getsource(DeclaredTableManager.on_start)


def test_a_table_declared_after_the_tables_started_is_still_refused(tmp_path: Path):
    app = create_app(ScoringSettings(data_dir=tmp_path))
    app.tables._tables_finalized.set()  # what `_update_channels` does first when the manager starts
    with pytest.raises(RuntimeError, match="Too late to add tables"):
        app.Table("late-table", default=None)


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
