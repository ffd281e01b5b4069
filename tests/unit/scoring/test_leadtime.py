"""Lead-time indicators: baseline median, ratio, least-squares trend, per-origin latest quotes."""

from __future__ import annotations

import numpy as np
import pytest

from services.scoring.indicators.leadtime import DAY, leadtime_indicators, median, trend_days_per_30d


def test_baseline_is_the_median_of_earlier_quotes_and_ratio_divides_latest_by_it():
    quotes = [(0.0, 30.0, "CN"), (10 * DAY, 40.0, "CN"), (20 * DAY, 35.0, "AU"), (30 * DAY, 70.0, "CN")]
    ind = leadtime_indicators(quotes, baseline_days=365, trend_days=90)
    assert ind["leadtime_days"] == 70.0
    assert ind["leadtime_baseline_days"] == 35.0  # median of 30, 40, 35
    assert ind["leadtime_ratio"] == pytest.approx(2.0)
    assert ind["leadtime_days.CN"] == 70.0
    assert ind["leadtime_days.AU"] == 35.0


def test_quotes_outside_the_baseline_window_are_ignored():
    quotes = [(0.0, 500.0, ""), (400 * DAY, 30.0, ""), (401 * DAY, 60.0, "")]
    ind = leadtime_indicators(quotes, baseline_days=365, trend_days=90)
    assert ind["leadtime_baseline_days"] == 30.0
    assert ind["leadtime_ratio"] == pytest.approx(2.0)


def test_trend_is_least_squares_slope_in_days_per_30_days():
    days = np.array([0, 7, 14, 21, 28], dtype=float)
    values = np.array([30, 33, 35, 40, 41], dtype=float)
    slope_per_day = np.polyfit(days, values, 1)[0]
    assert trend_days_per_30d(list(days * DAY), list(values)) == pytest.approx(slope_per_day * 30)


def test_single_quote_has_no_baseline_ratio_or_trend():
    ind = leadtime_indicators([(0.0, 45.0, "CN")], baseline_days=365, trend_days=90)
    assert ind["leadtime_days"] == 45.0
    assert ind["leadtime_baseline_days"] is None
    assert ind["leadtime_ratio"] is None
    assert ind["leadtime_trend_days_per_30d"] is None


def test_median_even_and_odd():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert median([]) is None
