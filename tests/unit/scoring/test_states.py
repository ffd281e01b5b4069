"""The states a worker holds in memory: records with their offsets, what is due to be persisted and published."""

from __future__ import annotations

import json
import math

import pytest

from services.scoring.engine import MaterialState, apply_event_in_place
from services.scoring.states import OFFSETS, MaterialStates, Resident, position
from tests.unit.scoring.test_engine import CONFIG, price

PRICES = "mews.prices.v1"


def scored(states: MaterialStates, material: str, partition: int, offset: int, day: float) -> Resident:
    """Score one price into a resident as the agent does."""
    resident = states.get(material, partition)
    resident.offsets[position(PRICES, partition)] = offset
    resident.state = apply_event_in_place(
        resident.state, price(300.0 + day, day, material=material), event_id=f"{material}-{offset}", config=CONFIG
    ).state
    states.scored(material, resident)
    return resident


def test_a_record_carries_its_offsets_and_reloads_to_the_same_state():
    states = MaterialStates(lambda material: None)
    for offset in range(5):
        resident = scored(states, "gallium", 3, offset, offset)
    record = json.loads(json.dumps(resident.record()))  # as the changelog carries it
    assert record[OFFSETS] == {"mews.prices.v1/3": 4}
    assert MaterialState.from_dict(record).to_dict() == resident.state.to_dict()  # readers of the plain state
    again = Resident.from_record(record, 3)
    assert again.state.to_dict() == resident.state.to_dict()
    assert again.offsets == {"mews.prices.v1/3": 4}


def test_an_input_is_covered_up_to_the_recorded_offset_of_its_own_partition_only():
    resident = Resident(MaterialState(material="gallium"), 3, {position(PRICES, 3): 41})
    assert resident.covers(PRICES, 3, 40)
    assert resident.covers(PRICES, 3, 41)
    assert not resident.covers(PRICES, 3, 42)
    assert not resident.covers(PRICES, 4, 0)
    assert not resident.covers("mews.news.v1", 3, 0)
    # A record written before records carried offsets covers nothing: the event ids in its state still count.
    old = Resident.from_record(MaterialState(material="gallium").to_dict(), 3)
    assert not old.covers(PRICES, 3, 0)


def test_states_load_once_from_their_records_and_changed_ones_are_handed_out_once():
    loads = []
    stored = {"gallium": Resident(MaterialState(material="gallium"), 1, {position(PRICES, 1): 9}).record()}

    def load(material):
        loads.append(material)
        return stored.get(material)

    states = MaterialStates(load)
    assert states.get("gallium", 1).offsets == {position(PRICES, 1): 9}
    scored(states, "gallium", 1, 10, 0)
    scored(states, "gallium", 1, 11, 1)
    scored(states, "cobalt", 2, 0, 0)
    assert loads == ["gallium", "cobalt"]
    assert sorted(m for m, _ in states.take_unpersisted()) == ["cobalt", "gallium"]
    assert states.take_unpersisted() == []


def test_a_snapshot_waits_for_its_beat_unless_everything_is_due():
    states = MaterialStates(lambda material: None)
    resident = scored(states, "gallium", 1, 0, 0)
    assert resident.published_at == -math.inf
    states.unpublished("gallium", resident)
    assert [m for m, _ in states.due_snapshots(100.0, 1.0)] == ["gallium"]
    states.published("gallium", 100.0)
    assert states.due_snapshots(100.5, 1.0) == []
    states.unpublished("gallium", resident)
    assert states.due_snapshots(100.5, 1.0) == []
    assert [m for m, _ in states.due_snapshots(100.5, -1.0)] == ["gallium"]
    assert [m for m, _ in states.due_snapshots(101.0, 1.0)] == ["gallium"]


def test_dropping_a_partition_forgets_its_residents_and_refuses_unpersisted_ones():
    records = {}
    states = MaterialStates(records.get)
    scored(states, "gallium", 1, 0, 0)
    scored(states, "cobalt", 2, 0, 0)
    for material, resident in states.take_unpersisted():
        records[material] = resident.record()
    assert states.drop({1}) == ["gallium"]
    assert len(states) == 1
    assert states.get("gallium", 1).offsets == {position(PRICES, 1): 0}  # back from its record
    scored(states, "cobalt", 2, 1, 1)
    with pytest.raises(RuntimeError, match="cobalt dropped before it was persisted"):
        states.drop({2})


def test_a_snapshot_sent_after_a_cut_is_seen_and_one_not_sent_is_due_again():
    states = MaterialStates(lambda material: None)
    resident = scored(states, "gallium", 3, 0, 0)
    states.unpublished("gallium", resident)
    assert [m for m, _ in states.due_snapshots(10.0, 1.0)] == ["gallium"]
    states.published("gallium", 10.0)  # taken into a cut at 10.0
    assert not states.published_since("gallium", 10.0)
    states.published("gallium", 10.5)  # a breach sent a newer one before the cut's snapshot went out
    assert states.published_since("gallium", 10.0)
    assert not states.published_since("cobalt", 0.0)  # never resident

    states.republish("gallium")  # the cut failed: its snapshot was not sent after all
    assert [m for m, _ in states.due_snapshots(20.0, 1.0)] == ["gallium"]
    states.republish("cobalt")
    assert [m for m, _ in states.due_snapshots(20.0, 1.0)] == ["gallium"]
