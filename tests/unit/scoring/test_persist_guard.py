"""Guards on the faust 0.15 internals that the scoring agent's `persist` relies on to never commit an input offset
beyond what the changelog holds; no broker.

When a guard fails after a faust upgrade, re-read the named method and decide whether acking only persisted inputs
is still enough before changing the expected values here (docs/methodology.md, "How scoring state is persisted").
The guard on `processing`, which binds the current event for the table writes, is in test_faust_fixes.py.
"""

from __future__ import annotations

import inspect

from faust.app.base import App
from faust.streams import Stream
from faust.transport.consumer import Consumer

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
    assert _in_order(
        inspect.getsource(Consumer._commit_offsets),
        "await self.app.producer.flush()",
        "await self._commit(committable_offsets)",
    )


def test_noack_take_leaves_acking_to_the_agent():
    code = [line.split("#")[0] for line in inspect.getsource(Stream.noack_take).splitlines()]
    assert any("self.enable_acks = False" in line for line in code)
    assert not any(".ack(" in line for line in code)


def test_a_rebalance_and_a_stop_wait_for_every_input_to_be_acked():
    assert _in_order(
        inspect.getsource(App._on_partitions_revoked),
        "_consumer_wait_empty",
        "_producer_flush",
        "self.on_partitions_revoked.send",
    )
    assert "_consumer_wait_empty" in inspect.getsource(App._stop_consumer)
    assert "self._unacked_messages" in inspect.getsource(Consumer.wait_empty)


def test_the_app_waits_for_streams_to_empty(tmp_path):
    assert create_app(ScoringSettings(data_dir=tmp_path)).conf.stream_wait_empty is True


def test_one_agent_instance_scores_every_partition_so_a_material_is_scored_in_offset_order(tmp_path):
    agents = list(create_app(ScoringSettings(data_dir=tmp_path)).agents.values())
    assert [(agent.name.rsplit(".", 1)[-1], agent.concurrency) for agent in agents] == [("score-materials", 1)]
