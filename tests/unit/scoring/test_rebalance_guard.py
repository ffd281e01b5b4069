"""Guards on the faust 0.15 internals that `hold_inputs_until_seeked` and `restart_stranded_recovery` rely on, the
decisions they take, and the engine's promise that an input read twice counts once; no broker.

When a guard fails after a faust upgrade, re-read `Recovery.on_recovery_completed`, `Recovery._restart_recovery` and
`Consumer.getmany` and decide whether the hold and the restart are still needed (or still enough) before changing
the expected values here.
"""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from services.scoring.agents import passed_over
from services.scoring.app import create_app, stranded
from services.scoring.engine import apply_event, load_config
from services.scoring.settings import ScoringSettings
from shared.events import LeadTimeQuoted, NewsReported, PriceObserved, TradeFlowReported


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


@pytest.mark.parametrize(("progress", "since"), [
    ({P3: (-1, 31, 20)}, {P3: (-1, 0.0)}),  # still fetching: the records are on their way
    ({P3: (-1, 31, None)}, {P3: (-1, 0.0)}),  # no position yet (seek pending)
    ({P3: (31, 31, 32)}, {P3: (31, 0.0)}),  # everything applied: the restore is finishing
    ({P3: (12, 31, 32)}, {P3: (11, 0.0)}),  # applied moved since the last check: records are arriving
    ({P3: (-1, 31, 32)}, {}),  # first look: no history to judge by
])
def test_a_restore_that_may_still_progress_is_left_alone(progress, since):
    assert stranded(progress, since, now=100.0, hold=6.0) == []


T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
READ_AGAIN = [
    PriceObserved(material="gallium", source="exchange", observed_at=T0, price=100.0, currency="USD", unit="kg",
                  series="spot"),
    LeadTimeQuoted(material="gallium", source="broker", quoted_at=T0, lead_time_days=30.0, origin_country="CN",
                   supplier="s1"),
    TradeFlowReported(material="gallium", source="comext", reporter="EU27", partner="CN", hs_code="811292",
                      period="2025-01", quantity_kg=1000.0, value_eur=5000.0),
    NewsReported(material="gallium", item_id="n1", source="wire", title="Export licences for gallium",
                 published_at=T0, countries=["CN"], measure="export_licence", relevant=True, score=0.9),
]


@pytest.mark.parametrize("event", READ_AGAIN, ids=lambda e: type(e).__name__)
def test_an_input_read_again_after_a_rebalance_changes_nothing_whether_its_id_is_remembered_or_not(event):
    # faust delivers at least once: what a worker scored but did not commit is read again by the next owner.
    config = load_config()
    first = apply_event(None, event, event_id="id-1", config=config)
    assert first.rejected is None

    same_id = apply_event(first.state, event, event_id="id-1", config=config)
    # Past the remembered ids (seen_ids is bounded), the data itself identifies the input.
    other_id = apply_event(first.state, event, event_id="id-2", config=config)

    assert same_id.rejected is not None
    assert same_id.rejected.kind == "duplicate"
    assert other_id.rejected is not None
    assert other_id.rejected.kind == "duplicate"
    assert same_id.state == first.state
    assert other_id.state == first.state
    assert same_id.breaches == other_id.breaches == []
