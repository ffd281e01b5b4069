"""Guards on the faust 0.15 internals that `hold_inputs_until_seeked` relies on; no broker.

When one of these fails after a faust upgrade, re-read `Recovery.on_recovery_completed` and decide whether the hold
is still needed (or still enough) before changing the expected values here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from services.scoring.agents import passed_over
from services.scoring.app import create_app
from services.scoring.settings import ScoringSettings


def _positions(source: str, *steps: str) -> list[int]:
    """Where each step first appears in the source (-1 when it does not)."""
    return [source.find(step) for step in steps]


@pytest.mark.parametrize("method", [Recovery.on_recovery_completed, Recovery._resume_streams])
def test_faust_signals_rebalance_complete_before_it_resumes_seeks_and_empties_the_input_queues(method):
    source = inspect.getsource(method)
    steps = ("on_rebalance_complete.send()", "resume_partitions(", "perform_seek()", "flow_control.resume()",
             "resume_flow()")
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


@pytest.mark.parametrize(("expected", "offset", "missed"), [
    (None, 7, 0),  # nothing known yet: no gap can be seen
    (7, 7, 0),  # the next one
    (7, 3, 0),  # faust sought back to the committed offset: inputs read again, none passed over
    (7, 8, 1),
    (7, 12, 5),
])
def test_passed_over_counts_only_forward_jumps(expected, offset, missed):
    assert passed_over(expected, offset) == missed
