"""Composite risk score: normalised components, renormalised weights, contributions in points."""

from __future__ import annotations

import pytest

from services.scoring.indicators.composite import composite_score, normalise_components

NORMS = {"volatility_ref": 0.6, "price_trend_ref_pct": 50.0, "leadtime_ratio_ref": 2.0}


def test_components_are_normalised_and_clipped():
    c = normalise_components(
        {
            "price_volatility": 0.3,
            "price_change_30d_pct": 75.0,
            "leadtime_ratio": 1.5,
            "governance_hhi": 5000.0,
            "import_reliance": 0.8,
            "export_control_severity": 0.6,
        },
        **NORMS,
    )
    assert c == pytest.approx(
        {"volatility": 0.5, "price_trend": 1.0, "leadtime": 0.5, "concentration": 0.4, "export_controls": 0.6}
    )


def test_falling_prices_and_short_lead_times_score_zero_not_negative():
    c = normalise_components({"price_change_30d_pct": -20.0, "leadtime_ratio": 0.5}, **NORMS)
    assert c == {"price_trend": 0.0, "leadtime": 0.0}


def test_score_is_weighted_mean_on_0_100_with_contributions_summing_to_it():
    components = {"volatility": 0.5, "export_controls": 1.0}
    weights = {"volatility": 0.2, "export_controls": 0.3, "leadtime": 0.5}  # leadtime has no data
    score, contributions = composite_score(components, weights)
    # renormalised weights 0.4 and 0.6: 100 * (0.4 * 0.5 + 0.6 * 1.0) = 80
    assert score == pytest.approx(80.0)
    assert contributions == pytest.approx({"volatility": 20.0, "export_controls": 60.0})


def test_no_data_means_no_score():
    assert composite_score({}, {"volatility": 1.0}) == (None, {})


def test_no_score_when_components_with_data_carry_too_little_weight():
    weights = {"volatility": 0.2, "export_controls": 0.3, "concentration": 0.5}
    assert composite_score({"export_controls": 1.0}, weights, min_coverage=0.5) == (None, {})
    score, _ = composite_score({"export_controls": 1.0, "concentration": 0.5}, weights, min_coverage=0.5)
    # 100 * (0.3 * 1.0 + 0.5 * 0.5) / 0.8
    assert score == pytest.approx(68.75)
