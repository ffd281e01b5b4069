"""Dependency indicators against hand-computed values."""

from __future__ import annotations

import pytest

from services.scoring.indicators.concentration import (
    eu_scaled_wgi,
    governance_risk,
    governance_weighted_hhi,
    herfindahl_hirschman,
    import_reliance,
    import_shares,
    non_eu_share,
    supply_concentration,
    top_origin,
)


def test_hhi_of_shares_on_the_10000_scale():
    shares = import_shares({"CN": 80.0, "DE": 15.0, "JP": 5.0})
    assert shares == pytest.approx({"CN": 0.8, "DE": 0.15, "JP": 0.05})
    assert herfindahl_hirschman(shares) == pytest.approx(80**2 + 15**2 + 5**2)  # 6650


def test_single_origin_is_a_monopoly():
    assert herfindahl_hirschman(import_shares({"CN": 3.0})) == pytest.approx(10_000)


def test_zero_share_origin_counts_as_zero_and_all_zero_is_no_data():
    shares = import_shares({"CN": 50.0, "US": 0.0, "AU": 50.0})
    assert shares["US"] == 0.0
    assert herfindahl_hirschman(shares) == pytest.approx(5000)
    assert import_shares({"CN": 0.0}) == {}
    assert herfindahl_hirschman({}) is None


def test_top_origin_and_non_eu_share():
    shares = import_shares({"CN": 60.0, "NL": 30.0, "US": 10.0})
    assert top_origin(shares) == ("CN", pytest.approx(0.6))
    assert non_eu_share(shares) == pytest.approx(0.7)


def test_all_eu_origins_have_no_non_eu_share():
    assert non_eu_share(import_shares({"DE": 1.0, "FR": 1.0, "BE": 2.0})) == 0.0


def test_import_reliance_eu_formula():
    # (imports - exports) / (production + imports - exports) = (90 - 10) / (20 + 90 - 10)
    assert import_reliance(90, 10, 20) == pytest.approx(0.8)
    assert import_reliance(0, 50, 100) == 0.0  # net exporter
    assert import_reliance(10, 0, 0) == 1.0
    assert import_reliance(0, 0, 0) is None


def test_governance_weighted_hhi_weights_each_squared_share():
    shares = {"CN": 0.5, "AU": 0.5}
    scores = {"CN": 0.56, "AU": 0.34}
    expected = 50**2 * 0.56 + 50**2 * 0.34  # 2250
    assert governance_weighted_hhi(shares, scores) == pytest.approx(expected)


def test_governance_weighted_hhi_leaves_out_origins_without_a_published_score():
    # No invented default: XX has no WGI estimate, so only CN's squared share counts.
    assert governance_weighted_hhi({"CN": 0.6, "XX": 0.4}, {"CN": 0.5}) == pytest.approx(60**2 * 0.5)
    assert governance_weighted_hhi({"XX": 1.0}, {}) is None


def test_supply_concentration_of_world_production_by_hand():
    # Shares of world output; "other" producers are not in the map, so named shares sum to 0.9.
    shares = {"CN": 0.7, "CD": 0.15, "AU": 0.05}
    wgi = {"CN": 6.0, "CD": 9.0}  # EU scale 0..10; AU has no score here
    sc = supply_concentration(shares, wgi)
    assert sc is not None
    assert sc.hhi == pytest.approx(70**2 + 15**2 + 5**2)
    assert (sc.top_producer, sc.top_share) == ("CN", 0.7)
    assert sc.hhi_wgi == pytest.approx(0.7**2 * 6.0 + 0.15**2 * 9.0)
    assert sc.named_share == pytest.approx(0.9)
    assert sc.governed_share == pytest.approx(0.85)
    assert supply_concentration({}, wgi) is None


def test_wgi_scales_like_the_eu_methodology():
    # -2.5 (weakest) .. +2.5 (strongest) onto 10 .. 0; outside values clip.
    assert eu_scaled_wgi(-2.5) == 10.0
    assert eu_scaled_wgi(2.5) == 0.0
    assert eu_scaled_wgi(-0.513) == pytest.approx(10 * (2.5 + 0.513) / 5)
    assert governance_risk(-3.0) == 1.0
