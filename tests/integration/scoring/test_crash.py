"""A worker killed between two changelog writes loses no input and applies none twice; snapshots come on a beat."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from services.scoring.engine import MaterialState, apply_event_in_place, load_config
from shared import topics as declared
from shared.events import IndicatorSnapshot, PriceObserved
from tests.eventually import eventually_blocking

from .conftest import collect, price, produce, run
from .test_rebalance import latest_states

pytestmark = pytest.mark.integration

MATERIALS = ["gallium", "germanium", "cobalt", "lithium", "tungsten", "antimony"]
# Long enough that a batch is scored well inside one interval, so the kill lands between two writes.
CRASH = {"MEWS_SCORING_COMMIT_INTERVAL_SECONDS": "5", "MEWS_SCORING_SNAPSHOT_INTERVAL_SECONDS": "1"}


def prices(days: range) -> list[PriceObserved]:
    """Daily prices of every material with a +25 % jump every ninth day, so breaches fire and resolve."""
    return [
        price(m, d, 100.0 * (1.25 if d % 9 == 4 else 1.0) * (1 + 0.01 * ((d * (i + 1)) % 7)))
        for d in days
        for i, m in enumerate(MATERIALS)
    ]


def held_ids(states: dict[str, MaterialState]) -> Counter:
    """How often each input's CloudEvents id is held in the states' price series."""
    return Counter(i for state in states.values() for s in state.series.values() for i in s.ids)


def every_input_held_once(bootstrap: str, namespace: str, every_id: list[str]) -> dict[str, MaterialState]:
    """The changelog's states once they hold all these inputs, each of them held exactly once."""
    states = eventually_blocking(
        lambda: (s := run(latest_states(bootstrap, namespace))) and set(every_id) <= set(held_ids(s)) and s,
        within=40,
        what="every input in the changelog",
        every=0.2,
    )
    held = held_ids(states)
    assert [i for i in every_id if held[i] != 1] == []
    assert sum(held.values()) == len(every_id)
    return states


def replay(events: list[PriceObserved], ids: list[str]) -> tuple[dict[str, dict], set[tuple]]:
    """The records of the states an uninterrupted replay of these inputs ends with, and its breach transitions."""
    config = load_config()
    states: dict[str, MaterialState | None] = dict.fromkeys(MATERIALS)
    transitions = set()
    for event, event_id in zip(events, ids, strict=True):
        outcome = apply_event_in_place(states[event.material], event, event_id=event_id, config=config)
        states[event.material] = outcome.state
        transitions |= {(b.fingerprint, b.status.value, b.severity.value, b.observed_at) for b in outcome.breaches}
    return {m: s.to_dict() for m, s in states.items() if s}, transitions


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_worker_killed_between_two_changelog_writes_loses_no_input_and_applies_none_twice(
    kafka_topics, kafka_bootstrap, start_worker, store
):
    env = {**CRASH, "MEWS_SCORING_STORE": store}
    first = start_worker(kafka_topics, name="first", env=env)
    # The second batch is long enough (49 prices a material) for the survivor to re-read it in runs of prices.
    before, crashed = prices(range(0, 31)), prices(range(31, 80))
    before_ids = run(produce(kafka_bootstrap, kafka_topics, before[: -len(MATERIALS)]))
    eventually_blocking(
        lambda: set(before_ids) <= set(held_ids(run(latest_states(kafka_bootstrap, kafka_topics)))),
        within=40,
        what="the first inputs in the changelog",
        every=0.2,
    )

    # One more day, to see the write that persists it: the next write is a whole interval after that one.
    # Score a second batch inside that interval, then kill.
    writes = first.metric("mews_scoring_state_writes_total")
    before_ids += run(produce(kafka_bootstrap, kafka_topics, before[-len(MATERIALS) :]))
    eventually_blocking(
        lambda: first.metric("mews_scoring_state_writes_total") > writes, within=40, what="a changelog write", every=0.2
    )
    writes = first.metric("mews_scoring_state_writes_total")
    crashed_ids = run(produce(kafka_bootstrap, kafka_topics, crashed))
    eventually_blocking(
        lambda: first.metric("mews_scoring_events_total", outcome="ok") == len(before) + len(crashed),
        within=40,
        what="the second inputs scored",
        every=0.2,
    )
    assert first.metric("mews_scoring_state_writes_total") == writes
    first.kill()

    # Killed between two writes: the changelog holds every input of the first batch and none of the second.
    held = held_ids(run(latest_states(kafka_bootstrap, kafka_topics)))
    assert all(held[i] == 1 for i in before_ids)
    assert not any(held[i] for i in crashed_ids), "the second batch was persisted before the kill"

    # The killed member keeps its partitions until the group's session timeout ends its membership.
    second = start_worker(kafka_topics, name="second", env=env, ready=False)
    second.wait_ready(timeout=150)
    after = prices(range(80, 90))
    after_ids = run(produce(kafka_bootstrap, kafka_topics, after))
    every_id = before_ids + crashed_ids + after_ids
    states = every_input_held_once(kafka_bootstrap, kafka_topics, every_id)

    # The survivor applied exactly the inputs the changelog lacked.
    assert second.metric("mews_scoring_events_total", outcome="ok") == len(crashed) + len(after)
    assert second.metric("mews_scoring_events_total", outcome="duplicate") == 0
    assert second.metric("mews_scoring_events_total", outcome="late") == 0
    assert second.metric("mews_scoring_run_inputs_total") > 0  # recovered states went on in runs

    # And each state is the one an uninterrupted replay of the same inputs (the backtest's driver) ends with.
    replayed, transitions = replay(before + crashed + after, every_id)
    assert {m: s.to_dict() for m, s in states.items()} == replayed

    # No breach transition was lost with the kill (the ones re-scored after it may come twice).
    breaches = run(
        collect(
            kafka_bootstrap,
            kafka_topics,
            declared.BREACHES,
            lambda msgs: (
                {(b.fingerprint, b.status.value, b.severity.value, b.observed_at) for _, b in msgs} >= transitions
            ),
        )
    )
    assert {(b.fingerprint, b.status.value, b.severity.value, b.observed_at) for _, b in breaches} == transitions
    assert len(transitions) >= 2 * len(MATERIALS)


@pytest.mark.slow
def test_a_batch_failing_halfway_stops_the_worker_and_the_next_one_applies_every_input_exactly_once(
    kafka_topics, kafka_bootstrap, start_worker
):
    first = start_worker(kafka_topics, name="first", preload="tests.integration.scoring.batch_fault")
    before = prices(range(0, 20))
    before_ids = run(produce(kafka_bootstrap, kafka_topics, before))
    eventually_blocking(
        lambda: set(before_ids) <= set(held_ids(run(latest_states(kafka_bootstrap, kafka_topics)))),
        within=40,
        what="the first inputs in the changelog",
        every=0.2,
    )
    # The batch holding the marked input fails after its runs of prices changed the states in memory.
    after = prices(range(20, 40))
    at = len(after) // 2  # in the middle of its material's run
    after[at] = after[at].model_copy(update={"url": "https://example.org/poison"})
    after_ids = run(produce(kafka_bootstrap, kafka_topics, after, at_once=True))
    try:
        status = first.proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"first did not stop after a batch failed halfway:\n{first.tail()}")
    assert status != 0
    assert "scoring a batch failed halfway" in first.log_path.read_text()

    second = start_worker(kafka_topics, name="second")
    every_id = before_ids + after_ids
    states = every_input_held_once(kafka_bootstrap, kafka_topics, every_id)
    assert second.metric("mews_scoring_events_total", outcome="duplicate") == 0
    assert {m: s.to_dict() for m, s in states.items()} == replay(before + after, every_id)[0]


def test_snapshots_come_on_a_beat_and_the_last_one_shows_the_latest_input(kafka_topics, kafka_bootstrap, start_worker):
    start_worker(kafka_topics, env={"MEWS_SCORING_SNAPSHOT_INTERVAL_SECONDS": "1"})
    inputs = [price("nickel", d, 100.0 + (d % 3)) for d in range(60)]  # small moves: no breach
    run(produce(kafka_bootstrap, kafka_topics, inputs))

    def latest_seen(msgs):
        return any(e.as_of == inputs[-1].observed_at for _, e in msgs)

    snaps = [e for _, e in run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, latest_seen))]
    assert all(isinstance(s, IndicatorSnapshot) for s in snaps)
    assert 1 <= len(snaps) < len(inputs)
    assert snaps[-1].as_of == inputs[-1].observed_at
    assert snaps[-1].indicators["price"] == inputs[-1].price
    assert [s.as_of for s in snaps] == sorted(s.as_of for s in snaps)
