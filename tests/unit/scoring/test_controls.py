"""Export controls opened, updated, suspended and lifted from classified news."""

from __future__ import annotations

from datetime import date

from services.scoring.indicators.controls import (
    apply_control_news,
    control_severity,
    controls_in_force,
    easing_kind,
)


def news(controls, measure, countries, day, title="", item="i"):
    return apply_control_news(controls, measure=measure, countries=countries, effective=day, source="mofcom",
                              item_id=item, event_id=f"e-{item}", url="", title=title, summary="",
                              classification="public")


def test_licence_regime_opens_a_control_in_force_from_its_effective_date():
    controls, changes = news({}, "export_licence", ["CN"], date(2023, 8, 1), item="a")
    assert changes == ["opened CN|export_licence"]
    assert controls_in_force(controls, date(2023, 7, 31)) == []
    assert controls["CN|export_licence"].status(date(2023, 7, 31)) == "announced"
    in_force = controls_in_force(controls, date(2023, 8, 1))
    assert [(c.country, c.measure, c.since, c.item_id) for c in in_force] == [("CN", "export_licence", "2023-08-01",
                                                                               "a")]
    assert control_severity(in_force) == 0.6


def test_an_update_keeps_the_original_start_date():
    controls, _ = news({}, "export_ban", ["CN"], date(2024, 12, 3), item="a")
    controls, changes = news(controls, "export_ban", ["CN"], date(2025, 1, 10), item="b")
    assert changes == ["updated CN|export_ban"]
    assert controls["CN|export_ban"].since == "2024-12-03"
    assert controls["CN|export_ban"].item_id == "b"


def test_easing_from_the_same_country_lifts_and_other_countries_stay():
    controls, _ = news({}, "export_ban", ["CN"], date(2024, 12, 3))
    controls, _ = news(controls, "export_quota", ["MM"], date(2024, 12, 3))
    controls, changes = news(controls, "easing", ["CN"], date(2025, 11, 9), title="China lifts gallium ban")
    assert changes == ["lifted CN|export_ban"]
    assert [c.country for c in controls_in_force(controls, date(2025, 11, 9))] == ["MM"]
    assert controls["CN|export_ban"].status(date(2025, 11, 9)) == "lifted"
    assert controls_in_force(controls, date(2025, 1, 1))[0].country == "CN"


def test_a_temporary_easing_suspends_and_a_new_measure_reopens():
    controls, _ = news({}, "export_ban", ["CN"], date(2024, 12, 3))
    controls, changes = news(controls, "easing", ["CN"], date(2025, 11, 9), title="China suspends ban")
    assert changes == ["suspended CN|export_ban"]
    assert controls["CN|export_ban"].status(date(2025, 12, 1)) == "suspended"
    controls, changes = news(controls, "export_ban", ["CN"], date(2026, 11, 10), item="c")
    assert changes == ["opened CN|export_ban"]
    assert controls["CN|export_ban"].status(date(2026, 11, 10)) == "in_force"


def test_easing_words():
    assert easing_kind("Beijing pauses curbs", "") == "suspended"
    assert easing_kind("Ban lifted", "restrictions removed") == "lifted"


def test_no_controls_have_zero_severity():
    assert control_severity([]) == 0.0
