"""`indicator_snapshot`: the snapshot a worker builds from a state equals the one `apply_event` gives with it."""

from __future__ import annotations

import pytest

from services.scoring.engine import apply_event, apply_event_in_place, indicator_snapshot
from tests.unit.scoring.test_engine import CONFIG, all_kinds_of_input, mixed_inputs


@pytest.mark.parametrize("inputs", [all_kinds_of_input, mixed_inputs])
def test_snapshot_of_a_state_equals_the_snapshot_apply_event_gave_with_it(inputs):
    copied = owned = None
    compared = 0
    for i, event in enumerate(inputs()):
        outcome = apply_event(copied, event, event_id=f"id-{i}", config=CONFIG)
        in_place = apply_event_in_place(owned, event, event_id=f"id-{i}", config=CONFIG)
        copied, owned = outcome.state, in_place.state
        if outcome.snapshot is None:
            continue
        expected = outcome.snapshot.model_dump_json()
        assert indicator_snapshot(copied, CONFIG).model_dump_json() == expected
        # The worker's case: a state it owns and changes in place.
        assert indicator_snapshot(owned, CONFIG).model_dump_json() == expected
        compared += 1
    assert compared > 20
