"""Guards on the faust 0.15 internals that the scoring agent's `persist` relies on to never commit an input offset
beyond what the changelog holds; no broker.

When a guard fails after a faust upgrade, re-read the named method and decide whether acking only persisted inputs
is still enough before changing the expected values here (docs/methodology.md, "How scoring state is persisted").
"""

from __future__ import annotations

import inspect

from faust.app.base import App
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import Stream, current_event
from faust.tables.table import Table
from faust.transport.consumer import Consumer
from mode.utils.collections import ManagedUserDict

from services.scoring.agents import processing
from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings


def _in_order(source: str, *steps: str) -> bool:
    positions = [source.find(step) for step in steps]
    return -1 not in positions and positions == sorted(positions)


def test_faust_commits_only_acked_offsets_and_flushes_the_producer_first():
    # The offset committed for a partition is found from the acked offsets alone ...
    assert "self._acked[tp]" in inspect.getsource(Consumer._new_offset)
    assert "self._new_offset(tp)" in inspect.getsource(Consumer._filter_committable_offsets)
    # ... and the changelog records sent before are on the broker before it.
    assert _in_order(inspect.getsource(Consumer._commit_offsets), "await self.app.producer.flush()",
                     "await self._commit(committable_offsets)")


def test_noack_take_leaves_acking_to_the_agent():
    code = [line.split("#")[0] for line in inspect.getsource(Stream.noack_take).splitlines()]
    assert any("self.enable_acks = False" in line for line in code)
    assert not any(".ack(" in line for line in code)


def test_a_rebalance_and_a_stop_wait_for_every_input_to_be_acked():
    assert _in_order(inspect.getsource(App._on_partitions_revoked), "_consumer_wait_empty", "_producer_flush",
                     "self.on_partitions_revoked.send")
    assert "_consumer_wait_empty" in inspect.getsource(App._stop_consumer)
    assert "self._unacked_messages" in inspect.getsource(Consumer.wait_empty)


def test_a_table_write_takes_its_partition_from_the_current_event_that_processing_binds():
    # persist writes `table[material] = record` outside the stream, inside `processing(event)`: the changelog
    # partition and (rocksdb://) the store partition come from the current event.
    assert _in_order(inspect.getsource(ManagedUserDict.__setitem__), "self.on_key_set(key, value)",
                     "self.data[key] = value")
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


def test_the_app_waits_for_streams_to_empty(tmp_path):
    assert create_app(ScoringSettings(data_dir=tmp_path)).conf.stream_wait_empty is True


def test_one_agent_instance_scores_every_partition_so_a_material_is_scored_in_offset_order(tmp_path):
    agents = list(create_app(ScoringSettings(data_dir=tmp_path)).agents.values())
    assert [(agent.name.rsplit(".", 1)[-1], agent.concurrency) for agent in agents] == [("score-materials", 1)]
