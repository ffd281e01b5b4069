"""What a rebalance may do to the inputs: the agent's count of offsets passed over (per stretch of a batch), and the
engine's promise that an input read twice counts once; no broker.

The guards on the faust internals that `hold_inputs_until_seeked` and `restart_stranded_recovery` rely on are in
test_faust_fixes.py, beside the other workarounds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from faust.types import TP, Message

from services.scoring.agents import passed_over, stretches
from services.scoring.engine import apply_event, load_config
from shared.events import LeadTimeQuoted, NewsReported, PriceObserved, TradeFlowReported


def _positions(source: str, *steps: str) -> list[int]:
    """Where each step first appears in the source (-1 when it does not)."""
    return [source.find(step) for step in steps]


@pytest.mark.parametrize(
    ("expected", "offset", "missed"),
    [
        (None, 7, 0),  # nothing known yet: no gap can be seen
        (7, 7, 0),  # the next one
        (7, 3, 0),  # faust sought back to the committed offset: inputs read again, none passed over
        (7, 8, 1),
        (7, 12, 5),
    ],
)
def test_passed_over_counts_only_forward_jumps(expected, offset, missed):
    assert passed_over(expected, offset) == missed


def _message(topic: str, partition: int, offset: int, generation: int = 1) -> Message:
    tp = TP(topic, partition)
    return Message(topic, partition, offset, 0.0, 0, [], b"k", b"v", None, tp=tp, generation_id=generation)


def test_a_batch_is_cut_into_stretches_wherever_its_partition_offset_or_generation_does_not_follow_on():
    batch = [
        _message("prices", 0, 5),
        _message("prices", 0, 6),
        _message("prices", 0, 7),
        _message("prices", 1, 8),  # another partition
        _message("prices", 1, 10),  # a gap
        _message("leadtimes", 1, 11),  # another topic, offset following on
        _message("leadtimes", 1, 12, generation=2),  # another generation
        _message("leadtimes", 1, 12, generation=2),  # the same offset again
    ]
    assert [(first.offset, last.offset) for first, last in stretches(batch)] == [
        (5, 7),
        (8, 8),
        (10, 10),
        (11, 11),
        (12, 12),
        (12, 12),
    ]
    assert stretches([]) == []


T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
READ_AGAIN = [
    PriceObserved(
        material="gallium", source="exchange", observed_at=T0, price=100.0, currency="USD", unit="kg", series="spot"
    ),
    LeadTimeQuoted(
        material="gallium", source="broker", quoted_at=T0, lead_time_days=30.0, origin_country="CN", supplier="s1"
    ),
    TradeFlowReported(
        material="gallium",
        source="comext",
        reporter="EU27",
        partner="CN",
        hs_code="811292",
        period="2025-01",
        quantity_kg=1000.0,
        value_eur=5000.0,
    ),
    NewsReported(
        material="gallium",
        item_id="n1",
        source="wire",
        title="Export licences for gallium",
        published_at=T0,
        countries=["CN"],
        measure="export_licence",
        relevant=True,
        score=0.9,
    ),
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
