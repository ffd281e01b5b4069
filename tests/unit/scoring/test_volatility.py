"""Price indicators against values computed independently with numpy and pandas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from services.scoring.indicators.volatility import (
    DAY,
    ewma_volatility,
    infer_frequency,
    jump_zscore,
    log_returns,
    price_change_pct,
    price_indicators,
    realised_volatility,
    volatility_ratio,
)

PRICES = [100.0, 102.0, 101.0, 105.0, 103.5, 108.0, 107.0, 111.0, 109.0, 115.0, 113.0, 118.0]


def daily(n: int, start: float = 1_700_000_000.0) -> list[float]:
    return [start + i * DAY for i in range(n)]


def test_realised_volatility_matches_numpy_sample_sd_annualised_daily():
    r = np.diff(np.log(PRICES))
    expected = np.std(r, ddof=1) * math.sqrt(252)
    assert realised_volatility(log_returns(PRICES), 252) == pytest.approx(expected, rel=1e-12)


def test_realised_volatility_of_flat_prices_is_zero_not_an_error():
    assert realised_volatility(log_returns([50.0] * 10), 252) == 0.0


def test_realised_volatility_needs_two_returns():
    assert realised_volatility(log_returns([10.0]), 252) is None
    assert realised_volatility(log_returns([10.0, 11.0]), 252) is None


def test_ewma_volatility_matches_pandas_recursive_ewm_of_squared_returns():
    r = pd.Series(np.diff(np.log(PRICES)))
    expected = math.sqrt((r**2).ewm(alpha=1 - 0.94, adjust=False).mean().iloc[-1])
    assert ewma_volatility(list(r), 0.94) == pytest.approx(expected, rel=1e-12)


def test_ewma_volatility_by_hand_for_two_returns():
    # sigma2 = 0.9 * 0.01^2 + 0.1 * 0.02^2 = 0.00009 + 0.00004
    assert ewma_volatility([0.01, 0.02], 0.9) == pytest.approx(math.sqrt(0.00013))


def test_frequency_is_inferred_from_observation_spacing():
    assert infer_frequency(daily(30)) == "daily"
    business = [t for t in daily(40) if (int(t // DAY) + 4) % 7 < 5]  # weekends skipped
    assert infer_frequency(business) == "daily"
    assert infer_frequency([i * 7 * DAY for i in range(20)]) == "weekly"
    months = pd.date_range("2020-01-01", periods=24, freq="MS", tz="UTC")
    assert infer_frequency([m.timestamp() for m in months]) == "monthly"


def test_monthly_series_annualises_with_sqrt_12():
    months = [m.timestamp() for m in pd.date_range("2020-01-01", periods=len(PRICES), freq="MS", tz="UTC")]
    ind = price_indicators(
        months,
        PRICES,
        volatility_window=30,
        ewma_lambda=0.94,
        ewma_window=100,
        short_window=3,
        long_window=8,
        jump_window=60,
    )
    expected = np.std(np.diff(np.log(PRICES)), ddof=1) * math.sqrt(12)
    assert ind["price_volatility"] == pytest.approx(expected)
    assert ind["price_periods_per_year"] == 12


def test_price_change_against_observation_closest_to_horizon():
    t = daily(40)
    prices = [100.0 + i for i in range(40)]
    # latest 139 at day 39; 1 day earlier is 138, 7 days earlier 132, 30 days earlier 109
    assert price_change_pct(t, prices, 1) == pytest.approx((139 / 138 - 1) * 100)
    assert price_change_pct(t, prices, 7) == pytest.approx((139 / 132 - 1) * 100)
    assert price_change_pct(t, prices, 30) == pytest.approx((139 / 109 - 1) * 100)


def test_price_change_over_a_weekend_uses_friday():
    friday, monday = 0.0, 3 * DAY
    assert price_change_pct([friday, monday], [100.0, 130.0], 1) == pytest.approx(30.0)


def test_monthly_series_has_a_30_day_change_but_no_1_day_change():
    months = [m.timestamp() for m in pd.date_range("2022-01-01", periods=3, freq="MS", tz="UTC")]
    prices = [22355.4, 24015.55, 33924.18]  # nickel, Pink Sheet, Jan-Mar 2022
    assert price_change_pct(months, prices, 30) == pytest.approx((33924.18 / 24015.55 - 1) * 100)
    assert price_change_pct(months, prices, 1) is None
    assert price_change_pct(months, prices, 7) is None


def test_price_change_with_one_observation_or_a_gap_is_none():
    assert price_change_pct([0.0], [10.0], 1) is None
    # a 20-day gap: no reference near 1 day back
    assert price_change_pct([0.0, 20 * DAY], [10.0, 12.0], 1) is None


def test_jump_zscore_against_earlier_returns():
    rng = np.random.default_rng(7)
    r = list(rng.normal(0, 0.01, 40)) + [0.08]
    earlier = np.array(r[-31:-1])
    expected = (0.08 - earlier.mean()) / earlier.std(ddof=1)
    assert jump_zscore(r, window=30) == pytest.approx(expected)


def test_jump_zscore_undefined_for_flat_history_or_too_few_returns():
    assert jump_zscore([0.0] * 20 + [0.3], window=30) is None
    assert jump_zscore([0.01, -0.01, 0.3], window=30) is None


def test_volatility_ratio_short_over_long():
    rng = np.random.default_rng(3)
    r = list(rng.normal(0, 0.01, 60))
    expected = np.std(r[-10:], ddof=1) / np.std(r[-60:], ddof=1)
    assert volatility_ratio(r, 10, 60) == pytest.approx(expected)
    assert volatility_ratio(r[:30], 10, 60) is None
    assert volatility_ratio([0.0] * 60, 10, 60) is None


def test_indicators_of_a_single_observation_have_no_changes_or_volatility():
    ind = price_indicators(
        [0.0],
        [42.0],
        volatility_window=30,
        ewma_lambda=0.94,
        ewma_window=100,
        short_window=10,
        long_window=60,
        jump_window=60,
    )
    assert ind["price"] == 42.0
    assert all(
        ind[k] is None
        for k in (
            "price_change_1d_pct",
            "price_volatility",
            "price_volatility_ewma",
            "price_jump_z",
            "price_volatility_ratio",
        )
    )


def test_jump_zscore_sd_is_floored_when_history_is_nearly_flat():
    r = [0.0001 * (-1) ** i for i in range(30)] + [0.05]
    earlier = np.array(r[-31:-1])
    assert earlier.std(ddof=1) < 0.0002  # without a floor the move would be hundreds of sd
    assert jump_zscore(r, window=30, sd_floor=0.01) == pytest.approx((0.05 - earlier.mean()) / 0.01)
    assert jump_zscore([0.0] * 20 + [0.3], window=30, sd_floor=0.1) == pytest.approx(3.0)


def test_jump_zscore_floor_leaves_a_volatile_history_alone():
    rng = np.random.default_rng(11)
    r = list(rng.normal(0, 0.02, 40)) + [0.1]
    earlier = np.array(r[-31:-1])
    expected = (0.1 - earlier.mean()) / earlier.std(ddof=1)
    assert jump_zscore(r, window=30, sd_floor=0.005) == pytest.approx(expected)


def test_jump_zscore_needs_the_minimum_number_of_earlier_returns():
    r = [0.01, -0.01] * 10 + [0.05]
    assert jump_zscore(r, window=60, minimum=20) is not None
    assert jump_zscore(r[1:], window=60, minimum=20) is None


def test_monthly_jump_floor_is_the_annual_floor_over_sqrt_12():
    # Silver 1960-61 in the Pink Sheet: 22 months at 0.9137 $/oz, then 0.9231, then 1.0332 (December 1961).
    prices = [0.9137] * 22 + [0.9231, 1.0332]
    months = [i * 30.4 * DAY for i in range(len(prices))]
    ind = price_indicators(
        months,
        prices,
        volatility_window=30,
        ewma_lambda=0.94,
        ewma_window=100,
        short_window=10,
        long_window=60,
        jump_window=60,
        jump_min_returns=20,
        jump_sd_floor=0.10,
    )
    r = np.diff(np.log(prices))
    earlier = r[:-1]
    assert earlier.std(ddof=1) < 0.01 / math.sqrt(12)
    assert ind["price_jump_z"] == pytest.approx((r[-1] - earlier.mean()) / (0.10 / math.sqrt(12)))
    assert 3.0 < ind["price_jump_z"] < 5.0  # an 11% month in a quiet metal: a warning, not +51 sd
