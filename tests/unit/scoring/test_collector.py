"""The young-collection threshold of a scoring worker against what a batch of inputs really keeps alive."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from faust.types import TP, Message

from services.scoring.agents import Accepted, read_input
from services.scoring.app import TRACKED_PER_INPUT, young_collection_threshold
from shared import topics as declared
from shared.events import PriceObserved, encode

BATCH = 2_000


def _batch() -> list[Message]:
    tp = TP(declared.PRICES.qualified(""), 0)
    return [
        Message(
            tp.topic,
            0,
            i,
            0.0,
            0,
            [],
            b"gallium",
            encode(
                PriceObserved(
                    material="gallium",
                    source="exchange",
                    observed_at=datetime.fromtimestamp(1.6e9 + 86400 * i, UTC),
                    price=300.0 + i % 17,
                    currency="USD",
                    unit="kg",
                    series="spot",
                ),
                source="test",
            ),
            None,
            tp=tp,
        )
        for i in range(BATCH)
    ]


def _tracked() -> int:
    return len(gc.get_objects())


def test_a_read_batch_keeps_well_under_the_tracked_objects_per_input_the_threshold_allows():
    gc.collect()
    gc.disable()
    try:
        before = _tracked()
        messages = _batch()
        read = [read_input(m.value, m.key, PriceObserved) for m in messages]
        kept = (_tracked() - before) / BATCH
    finally:
        gc.enable()
    assert all(isinstance(r, Accepted) for r in read)
    # A batch's messages and what reading them made live until it is scored; scoring makes the rest.
    assert kept <= TRACKED_PER_INPUT / 2, kept


def test_the_threshold_grows_with_the_batch_and_never_falls_below_its_floor():
    assert young_collection_threshold(5_000) == 5_000 * TRACKED_PER_INPUT
    assert young_collection_threshold(1) == 10_000
