"""A backfill on the real broker, scored in runs of prices at once: the same breaches and snapshots as one by one."""

from __future__ import annotations

import math
import random

import pytest

from services.scoring.config import load_config
from services.scoring.engine import apply_event_in_place, indicator_snapshot
from shared import topics as declared
from shared.events import BreachRaised, IndicatorSnapshot
from tests.eventually import eventually_blocking

from .conftest import collect, price, produce, run

pytestmark = pytest.mark.integration

MATERIALS = ("tungsten", "cobalt", "gallium")
DAYS = 700


def backfill() -> list:
    """Daily prices of a few materials, day by day as a backfill arrives, with jumps that fire rules."""
    rng = random.Random(9)
    level = dict.fromkeys(MATERIALS, 100.0)
    events = []
    for day in range(DAYS):
        for material in MATERIALS:
            level[material] *= math.exp(rng.gauss(0, 0.03) + (rng.gauss(0, 0.25) if rng.random() < 0.02 else 0.0))
            events.append(price(material, day, round(level[material], 4)))
    return events


def one_by_one(events: list, ids: list[str]) -> tuple[list[BreachRaised], dict[tuple[str, object], IndicatorSnapshot]]:
    """What the engine gives input by input: every breach, and the snapshot after each input that had breaches."""
    config = load_config()
    states: dict = {}
    breaches: list[BreachRaised] = []
    snapshots: dict[tuple[str, object], IndicatorSnapshot] = {}
    for event, event_id in zip(events, ids, strict=True):
        outcome = apply_event_in_place(states.get(event.material), event, event_id=event_id, config=config)
        states[event.material] = outcome.state
        if outcome.breaches:
            breaches += outcome.breaches
            snap = indicator_snapshot(outcome.state, config)
            snapshots[(snap.material, snap.as_of)] = snap
    return breaches, snapshots


def test_a_backfill_scored_in_runs_gives_each_breach_and_its_snapshot_as_one_input_at_a_time(
    kafka_topics, kafka_bootstrap, start_worker
):
    events = backfill()
    ids = run(produce(kafka_bootstrap, kafka_topics, events))  # all on the broker before the worker starts
    expected, expected_snapshots = one_by_one(events, ids)
    assert len(expected) > 30

    # Snapshots on a beat, as deployed (the tests' default of one per input scores every input one by one).
    worker = start_worker(kafka_topics, env={"MEWS_SCORING_SNAPSHOT_INTERVAL_SECONDS": "1"})
    got = run(
        collect(kafka_bootstrap, kafka_topics, declared.BREACHES, lambda msgs: len(msgs) >= len(expected), wait=60)
    )
    breaches = [b for _, b in got]
    # The breaches topic is keyed by fingerprint: compare each fingerprint's transitions in order, to the bit.
    assert sorted(b.model_dump_json() for b in breaches) == sorted(b.model_dump_json() for b in expected)
    for fingerprint in {b.fingerprint for b in expected}:
        assert [b for b in breaches if b.fingerprint == fingerprint] == [
            b for b in expected if b.fingerprint == fingerprint
        ]
    # Most inputs went in runs, not one by one (the first of each material's batches may be short).
    assert worker.metric("mews_scoring_run_inputs_total") >= len(events) / 2
    # Each input counted once, whether its run applied it or it was scored alone: as scored, and in the lag.
    topic = declared.PRICES.name
    eventually_blocking(
        lambda: worker.metric("mews_scoring_events_total", topic=topic, outcome="ok") == len(events),
        within=30,
        every=0.2,
        what=f"{len(events)} prices counted as scored",
    )
    assert worker.metric("mews_scoring_processing_lag_seconds_count", topic=topic) == len(events)

    def every_breach_has_its_snapshot(msgs) -> bool:
        seen = {(s.material, s.as_of) for _, s in msgs if isinstance(s, IndicatorSnapshot)}
        return set(expected_snapshots) <= seen

    snapshots = run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, every_breach_has_its_snapshot))
    sent = {(s.material, s.as_of): s for _, s in snapshots if isinstance(s, IndicatorSnapshot)}
    for key, snap in expected_snapshots.items():
        assert sent[key].model_dump_json() == snap.model_dump_json()
