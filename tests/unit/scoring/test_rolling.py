"""The running windows against the from-scratch reference functions, on random series with late inserts."""

from __future__ import annotations

import json
import math
import random
import tomllib
from bisect import bisect_right
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.config import DEFAULT_PATH, PriceParams, load_config, parse_config
from services.scoring.engine import MaterialState, PriceSeries, Rejection, apply_event, apply_event_in_place
from services.scoring.indicators.rolling import ESTIMATE_RTOL, ESTIMATED, ReturnWindows
from services.scoring.indicators.volatility import DAY, price_indicators
from shared.events import PriceObserved

DEFAULT = PriceParams()
SMALL = PriceParams(
    volatility_window=5,
    ewma_lambda=0.8,
    ewma_window=7,
    short_window=3,
    long_window=6,
    jump_window=5,
    jump_min_returns=3,
    jump_sd_floor=0.0,
)


def reference(s: PriceSeries, p: PriceParams) -> dict[str, float | None]:
    """Every price indicator from the prices alone, every window recomputed."""
    return price_indicators(
        s.t,
        s.p,
        volatility_window=p.volatility_window,
        ewma_lambda=p.ewma_lambda,
        ewma_window=p.ewma_window,
        short_window=p.short_window,
        long_window=p.long_window,
        jump_window=p.jump_window,
        jump_min_returns=p.jump_min_returns,
        jump_sd_floor=p.jump_sd_floor,
    )


def assert_close(estimate: dict, expected: dict, rtol: float = ESTIMATE_RTOL) -> None:
    assert list(estimate) == list(expected)
    for name, want in expected.items():
        got = estimate[name]
        if want is None or got is None:
            assert got is want, name
        elif name in ESTIMATED:
            assert math.isclose(got, want, rel_tol=rtol, abs_tol=0.0), (name, got, want)
        else:
            assert got == want, name  # prices, changes and the frequency are computed the same way


# Prices that repeat (zero returns), step by equal ratios (equal returns) or move freely, in a wide range.
prices = st.one_of(st.sampled_from([1.0, 2.0, 4.0, 100.0, 100.5]), st.floats(0.01, 1e6, allow_subnormal=False))


@st.composite
def series_with_late_inserts(draw: st.DrawFn) -> list[tuple[float, float]]:
    """Observations a day or a few apart, most in time order, some arriving up to a week late."""
    n = draw(st.integers(1, 140))
    gaps = draw(st.lists(st.sampled_from([1.0, 1.0, 1.0, 3.0, 7.0, 30.0, 0.5]), min_size=n, max_size=n))
    values = draw(st.lists(prices, min_size=n, max_size=n))
    t, observations = 1.7e9, []
    for gap, price in zip(gaps, values, strict=True):
        t += gap * DAY
        observations.append((t, price))
    for _ in range(draw(st.integers(0, max(0, n // 5)))):
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(max(0, i - 5), i))
        observations.insert(i, observations.pop(j))  # observation j arrives up to 5 places late
    return observations


@settings(max_examples=300, deadline=None)
@given(series_with_late_inserts(), st.sampled_from([DEFAULT, SMALL]), st.sampled_from([400, 12, 8]))
def test_running_windows_equal_the_reference_functions_after_every_observation(observations, params, limit):
    s = PriceSeries("src", "spot")
    for t, p in observations:
        i = bisect_right(s.t, t)
        if i > 0 and s.t[i - 1] == t:
            continue
        s.add(i, t, p, f"id-{t}", "public", "", limit)
        estimate = s.windows.estimate(s.t, s.p, s.r, params)
        assert estimate is not None
        assert_close(estimate, reference(s, params))


@settings(max_examples=100, deadline=None)
@given(series_with_late_inserts(), st.sampled_from([DEFAULT, SMALL]))
def test_windows_rebuilt_from_the_stored_series_give_the_same_estimates(observations, params):
    s = PriceSeries("src", "spot")
    for t, p in observations:
        i = bisect_right(s.t, t)
        if i > 0 and s.t[i - 1] == t:
            continue
        s.add(i, t, p, f"id-{t}", "public", "", 400)
        s.windows.estimate(s.t, s.p, s.r, params)  # reading keeps the EWMA sum running
    rebuilt = PriceSeries.from_dict(json.loads(json.dumps(s.to_dict())))
    assert_close(
        rebuilt.windows.estimate(rebuilt.t, rebuilt.p, rebuilt.r, params), s.windows.estimate(s.t, s.p, s.r, params)
    )


def test_window_sums_are_exact():
    rng = random.Random(3)
    r = [math.nan] + [rng.gauss(0, 0.02) for _ in range(500)]
    w = ReturnWindows([float(i) for i in range(len(r))], r)
    for n in (2, 30, 60, 500):
        scaled = (w.s1[-1] - w.s1[-1 - n]) / 2**110
        assert scaled == math.fsum(r[-n:])
        assert (w.s2[-1] - w.s2[-1 - n]) / 2**220 == math.fsum(
            math.ldexp(int(math.ldexp(x, 110)) ** 2, -220) for x in r[-n:]
        )


def test_ewma_returns_to_exactly_zero_once_a_huge_jump_has_left_its_window():
    # A millionfold jump, then flat prices: the running sum must not keep a residue of the jump.
    flat = [(1.7e9 + d * DAY, 1e6 if d >= 10 else 1.0) for d in range(400)]
    s = PriceSeries("src", "spot")
    for t, p in flat:
        s.add(len(s.t), t, p, f"id-{t}", "public", "", 400)
        estimate = s.windows.estimate(s.t, s.p, s.r, DEFAULT)
        assert_close(estimate, reference(s, DEFAULT))
    assert estimate["price_volatility_ewma"] == 0.0
    assert estimate["price_volatility"] == 0.0


T0 = datetime(2021, 1, 4, tzinfo=UTC)


def price_events(seed: int, n: int = 400) -> list[tuple[PriceObserved, str]]:
    """A seeded daily random walk with jumps, a tenth of the prices arriving up to four days late."""
    rng = random.Random(seed)
    price, out = 100.0, []
    for d in range(n):
        price *= math.exp(rng.gauss(0, 0.03) + (rng.gauss(0, 0.3) if rng.random() < 0.02 else 0.0))
        out.append(
            (
                PriceObserved(
                    material="gallium",
                    source="s",
                    observed_at=T0 + timedelta(days=d),
                    price=price,
                    currency="USD",
                    unit="kg",
                    series="spot",
                ),
                f"id-{d}",
            )
        )
    for _ in range(n // 10):
        i = rng.randrange(5, n)
        out.insert(i - rng.randrange(1, 5), out.pop(i))
    return out


def test_a_state_rebuilt_from_its_dict_scores_on_bit_for_bit_like_the_one_kept_in_memory():
    config = load_config()
    events = price_events(11)
    kept: MaterialState | None = None
    reloaded: MaterialState | None = None
    kept_out, reloaded_out = [], []
    for k, (event, event_id) in enumerate(events):
        a = apply_event_in_place(kept, event, event_id=event_id, config=config)
        kept = a.state
        kept_out.extend(b.model_dump_json() for b in a.breaches)
        if k % 37 == 0 and reloaded is not None:  # the changelog's copy, written once in a while
            reloaded = MaterialState.from_dict(json.loads(json.dumps(reloaded.to_dict())))
        b = apply_event_in_place(reloaded, event, event_id=event_id, config=config)
        reloaded = b.state
        reloaded_out.extend(x.model_dump_json() for x in b.breaches)
    assert len(kept_out) > 5
    assert kept_out == reloaded_out
    assert json.dumps(kept.to_dict()) == json.dumps(reloaded.to_dict())


def test_a_threshold_exactly_at_the_reference_value_is_decided_on_the_reference_value():
    events = price_events(5, 200)
    shipped = {k: v for k, v in tomllib.loads(DEFAULT_PATH.read_text()).items() if k not in ("rules", "materials")}
    plain = parse_config({**shipped, "rules": []})
    state = None
    for event, event_id in events[:-1]:
        state = apply_event_in_place(state, event, event_id=event_id, config=plain).state
    snapshot = apply_event(state, events[-1][0], event_id=events[-1][1], config=plain).snapshot
    exact = {**snapshot.indicators, "risk_score": snapshot.risk_score}
    # warning = clear = the value at the last input: an estimate a hair below it would leave the rule closed
    names = (*ESTIMATED, "risk_score")
    rules = [{"name": n.replace("_", "-"), "indicator": n, "warning": exact[n], "clear": exact[n]} for n in names]
    config = parse_config({**shipped, "rules": rules})
    state, last = None, None
    for event, event_id in events:
        last = apply_event_in_place(state, event, event_id=event_id, config=config)
        state = last.state
    assert {s.indicator for s in state.rules.values() if s.open_severity} == set(names)
    for b in last.breaches:
        assert b.value == exact[b.indicator]


def test_an_estimate_within_the_margin_of_a_threshold_is_left_to_the_reference_value():
    from services.scoring.apply import _CHANGING, _UNDECIDED, _quiet_rules

    config = parse_config(
        {
            "rules": [
                {"name": "vol", "indicator": "price_volatility", "warning": 0.4, "clear": 0.3},
                {"name": "day", "indicator": "price_change_1d_pct", "warning": 20.0, "clear": 10.0},
            ]
        }
    )
    state = MaterialState(material="gallium", watermark=0.0)
    hair_below = {"price_volatility": 0.4 * (1 - ESTIMATE_RTOL), "price_change_1d_pct": 1.0}
    assert _quiet_rules(state, hair_below, config, estimated=False) == {}  # an exact value: decided, nothing fires
    assert _quiet_rules(state, hair_below, config, estimated=True) is _UNDECIDED  # an estimate: too close to call
    assert _quiet_rules(state, {**hair_below, "price_volatility": 0.39}, config, estimated=True) == {}
    # a breach on an estimate fires from the reference value; one on an exact value needs no reference value
    assert _quiet_rules(state, {**hair_below, "price_volatility": 0.41}, config, estimated=True) is _UNDECIDED
    assert (
        _quiet_rules(state, {"price_volatility": 0.39, "price_change_1d_pct": 25.0}, config, estimated=True)
        is _CHANGING
    )


def test_the_in_place_driver_remembers_and_forgets_event_ids_like_apply_event():
    config = load_config()
    limit = config.history.seen_ids
    events = [
        (
            PriceObserved(
                material="gallium",
                source="s",
                observed_at=T0 + timedelta(hours=h),
                price=100.0 + h,
                currency="USD",
                unit="kg",
                series="spot",
            ),
            f"id-{h}",
        )
        for h in range(limit + 5)
    ]
    owned = copied = None
    for event, event_id in events:
        owned = apply_event_in_place(owned, event, event_id=event_id, config=config).state
        copied = apply_event(copied, event, event_id=event_id, config=config).state
    later = T0 + timedelta(hours=limit + 10)
    for old_id in ("id-2", "id-100", f"id-{limit + 4}"):  # forgotten, remembered, the newest
        again = PriceObserved(
            material="gallium", source="s", observed_at=later, price=1.0, currency="USD", unit="kg", series="spot"
        )
        a = apply_event_in_place(MaterialState.from_dict(owned.to_dict()), again, event_id=old_id, config=config)
        b = apply_event(copied, again, event_id=old_id, config=config)
        assert a.rejected == b.rejected
        assert (a.rejected is None) == (old_id == "id-2")
    assert owned.seen_ids == copied.seen_ids
    # and the state kept in memory, with its set of ids beside the list
    dup = apply_event_in_place(owned, events[-1][0], event_id=events[-1][1], config=config)
    assert dup.rejected == Rejection("duplicate", "event id already applied")
    assert apply_event_in_place(owned, again, event_id="id-100", config=config).rejected == dup.rejected
    assert apply_event_in_place(owned, again, event_id="id-2", config=config).rejected is None
