"""A whole price history applied at once gives what `apply_event_in_place` gives one input at a time, to the bit."""

from __future__ import annotations

import math
import random
import tomllib
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.backtest import merge_inputs, replay
from services.scoring.config import DEFAULT_PATH, ScoringConfig, load_config, parse_config
from services.scoring.engine import apply_event_in_place, indicator_snapshot
from services.scoring.indicators.volatility import DAY
from services.scoring.price_history import apply_price_history, apply_price_run
from services.scoring.rules import RuleState
from shared.events import BreachRaised, PriceObserved
from shared.kafka import event_id_for

SHIPPED = tomllib.loads(DEFAULT_PATH.read_text())
# Small windows and history, and rules with thresholds the random series cross often, a hold time included.
SMALL = parse_config(
    {
        **SHIPPED,
        "price": {
            "volatility_window": 5,
            "ewma_lambda": 0.8,
            "ewma_window": 9,
            "short_window": 3,
            "long_window": 12,
            "jump_window": 20,
            "jump_min_returns": 4,
            "jump_sd_floor": 0.0,
        },
        "history": {**SHIPPED["history"], "price_points": 30, "evidence": 3},
        "rules": [
            *SHIPPED["rules"],
            {
                "name": "ewma",
                "indicator": "price_volatility_ewma",
                "warning": 0.3,
                "critical": 0.8,
                "clear": 0.2,
                "for": "3d",
            },
            {"name": "ratio", "indicator": "price_volatility_ratio", "warning": 1.5, "clear": 1.1},
            {
                "name": "cheap",
                "indicator": "price",
                "direction": "below",
                "warning": 50.0,
                "critical": 20.0,
                "clear": 60.0,
            },
        ],
    }
)


def prices(material: str, observations: list[tuple[float, float]], series: str = "spot") -> list[PriceObserved]:
    return [
        PriceObserved(
            material=material,
            source="src",
            observed_at=datetime.fromtimestamp(t, UTC),
            price=p,
            currency="USD",
            unit="t",
            series=series,
            url=f"https://example.org/{i}",
            classification="restricted" if i % 7 == 0 else "public",
        )
        for i, (t, p) in enumerate(observations)
    ]


def one_at_a_time_from(state, events: list[PriceObserved], ids: list[str], config: ScoringConfig):
    """Each input applied in turn to `state`: the final state, the breaches and each breach input's snapshot."""
    breaches, snapshots = {}, {}
    for k, (event, event_id) in enumerate(zip(events, ids, strict=True)):
        outcome = apply_event_in_place(state, event, event_id=event_id, config=config)
        assert outcome.rejected is None
        state = outcome.state
        if outcome.breaches:
            breaches[k] = outcome.breaches
            snapshots[k] = indicator_snapshot(state, config)
    return state, breaches, snapshots


def one_at_a_time(events: list[PriceObserved], ids: list[str], config: ScoringConfig):
    state, breaches, _ = one_at_a_time_from(None, events, ids, config)
    return state, breaches


def assert_same(events: list[PriceObserved], config: ScoringConfig) -> dict[int, list[BreachRaised]]:
    ids = [event_id_for(e.dedup_key()) for e in events]
    at_once = apply_price_history(events, ids, config)
    assert at_once is not None
    state, breaches = one_at_a_time(events, ids, config)
    assert at_once.breaches == breaches
    assert [b.model_dump_json() for bs in at_once.breaches.values() for b in bs] == [
        b.model_dump_json() for bs in breaches.values() for b in bs
    ]
    assert at_once.state.to_dict() == state.to_dict()
    assert at_once.state == state
    return breaches


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[float, float]]:
    """Strictly increasing times a day to a month apart; prices that jump, repeat or barely move."""
    n = draw(st.integers(1, 160))
    gaps = draw(st.lists(st.sampled_from([1.0, 1.0, 1.0, 3.0, 7.0, 30.0, 0.5]), min_size=n, max_size=n))
    moves = draw(
        st.lists(
            st.one_of(st.floats(-0.4, 0.4), st.just(0.0), st.sampled_from([1e-9, -1e-9, 0.05])), min_size=n, max_size=n
        )
    )
    t, price, out = 1.6e9, draw(st.floats(30.0, 200.0)), []
    for gap, move in zip(gaps, moves, strict=True):
        t += gap * DAY
        price = max(1e-3, price * math.exp(move))
        out.append((t, price))
    return out


@settings(max_examples=150, deadline=None)
@given(histories(), st.sampled_from(["default", "small"]))
def test_a_history_applied_at_once_equals_applying_it_one_price_at_a_time(observations, which):
    assert_same(prices("gallium", observations), load_config() if which == "default" else SMALL)


def test_long_daily_histories_with_many_breaches_are_the_same():
    rng = random.Random(11)
    for m, config in ((0, load_config()), (1, SMALL)):
        t, price, observations = 1.5e9, 100.0, []
        for d in range(1500):
            t += (3 if d % 5 == 4 else 1) * DAY
            price *= math.exp(rng.gauss(0, 0.02) + (rng.gauss(0, 0.3) if rng.random() < 0.01 else 0.0))
            observations.append((t, price))
        assert len(assert_same(prices(f"material-{m}", observations), config)) > 20


def test_a_flat_history_leaves_its_windows_to_the_reference_functions():
    # The same price, then one that barely differs: windows whose spread is nothing or tiny against the mean.
    observations = [(1.6e9 + d * DAY, 30000.0 + (d % 2) * 0.5 if d > 150 else 30000.0) for d in range(400)]
    observations += [(1.6e9 + (400 + d) * DAY, 30000.0 * 1.3 ** (d % 3)) for d in range(30)]
    assert_same(prices("cobalt", observations), load_config())
    assert_same(prices("cobalt", observations), SMALL)


def test_histories_the_engine_must_decide_input_by_input_are_not_taken():
    config = load_config()
    daily = [(1.6e9 + d * DAY, 100.0 + d) for d in range(50)]
    ids = [f"id-{k}" for k in range(50)]
    late = daily[:10] + [daily[11], daily[10]] + daily[12:]
    assert apply_price_history(prices("gallium", late), ids, config) is None
    same_time = daily[:10] + [daily[9]] + daily[11:]
    assert apply_price_history(prices("gallium", same_time), ids, config) is None
    assert apply_price_history(prices("gallium", daily), ids[:-1] + ["id-0"], config) is None
    two_series = prices("gallium", daily[:25]) + prices("gallium", daily[25:], series="other")
    assert apply_price_history(two_series, ids, config) is None
    assert apply_price_history(prices("gallium", daily), ids, config) is not None


def test_replay_keeps_input_order_across_materials_taken_at_once_and_one_by_one():
    # gallium's inputs include a late price, so it is replayed one by one; germanium's at once.
    rng = random.Random(5)
    reports = []
    from services.scoring.backtest import ReadReport, _input

    report = ReadReport()
    for material in ("gallium", "germanium"):
        price = 100.0
        for d in range(300):
            price *= math.exp(rng.gauss(0, 0.05))
            report.inputs.append(_input(prices(material, [(1.6e9 + d * DAY, price)])[0]))
    report.inputs.append(_input(prices("gallium", [(1.6e9 + 297.5 * DAY, 90.0)])[0]))
    reports.append(report)
    inputs = merge_inputs(reports)
    result = replay(inputs, load_config())
    state, expected = {}, []
    for item in inputs:
        m = item.event.material
        outcome = apply_event_in_place(state.get(m), item.event, event_id=item.event_id, config=load_config())
        state[m] = outcome.state
        expected.extend(outcome.breaches)
    assert len(expected) > 10
    assert result.breaches == expected
    assert {m: s.to_dict() for m, s in result.states.items()} == {m: s.to_dict() for m, s in state.items()}


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(0, 159), st.sampled_from(["default", "small"]))
def test_a_run_continuing_a_state_equals_applying_it_one_price_at_a_time(observations, split, which):
    # The first part goes in one price at a time (as a live worker's earlier batches), the rest at once.
    config = load_config() if which == "default" else SMALL
    events = prices("gallium", observations)
    ids = [event_id_for(e.dedup_key()) for e in events]
    split = min(split, len(events) - 1)
    before, _ = one_at_a_time(events[:split], ids[:split], config) if split else (None, {})
    twin, _ = one_at_a_time(events[:split], ids[:split], config) if split else (None, {})
    run = apply_price_run(before, events[split:], ids[split:], config)
    assert run is not None
    state, breaches, snapshots = one_at_a_time_from(twin, events[split:], ids[split:], config)
    assert run.breaches == breaches
    assert [b.model_dump_json() for bs in run.breaches.values() for b in bs] == [
        b.model_dump_json() for bs in breaches.values() for b in bs
    ]
    assert {k: run.snapshot_after(k) for k in run.breaches} == snapshots
    assert {k: run.snapshot_after(k).model_dump_json() for k in run.breaches} == {
        k: snap.model_dump_json() for k, snap in snapshots.items()
    }
    assert run.state.to_dict() == state.to_dict()
    assert run.state == state


def test_a_long_backfill_in_batches_equals_one_price_at_a_time():
    rng = random.Random(17)
    config = load_config()
    t, price, observations = 1.5e9, 100.0, []
    for d in range(1200):
        t += (3 if d % 5 == 4 else 1) * DAY
        price *= math.exp(rng.gauss(0, 0.03) + (rng.gauss(0, 0.3) if rng.random() < 0.01 else 0.0))
        observations.append((t, price))
    events = prices("tungsten", observations)
    ids = [event_id_for(e.dedup_key()) for e in events]
    expected_state, expected, _ = one_at_a_time_from(None, events, ids, config)
    state, found, start = None, {}, 0
    for size in [1, 30, 170, 2, 400, 97, 500]:  # batches shorter and longer than the history kept (400)
        run = apply_price_run(state, events[start : start + size], ids[start : start + size], config)
        assert run is not None
        found.update((start + k, b) for k, b in run.breaches.items())
        state, start = run.state, start + size
    assert start == len(events)
    assert len(found) > 20
    assert found == expected
    assert state.to_dict() == expected_state.to_dict()


def test_a_run_is_not_taken_when_the_engine_must_decide_input_by_input():
    config = load_config()
    daily = [(1.6e9 + d * DAY, 100.0 + d) for d in range(60)]
    events = prices("gallium", daily)
    ids = [f"id-{k}" for k in range(60)]
    state, _ = one_at_a_time(events[:30], ids[:30], config)
    assert apply_price_run(state, events[30:], ids[30:], config) is not None
    assert apply_price_run(state, events[29:], ids[29:], config) is None  # not newer than the watermark
    assert apply_price_run(state, events[30:], ids[30:-1] + ["id-3"], config) is None  # an id seen before
    assert apply_price_run(state, prices("gallium", daily[30:], series="other"), ids[30:], config) is None
    assert apply_price_run(state, prices("germanium", daily[30:]), ids[30:], config) is None
    state.rules["retired-rule"] = RuleState(pending_since=1.6e9)
    assert apply_price_run(state, events[30:], ids[30:], config) is None  # a removed rule resolves input by input
