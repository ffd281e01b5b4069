"""Export controls opened, updated, suspended and lifted from classified news."""

from __future__ import annotations

from datetime import date

from services.scoring.indicators.controls import (
    apply_control_news,
    control_severity,
    controls_in_force,
    eased_measures,
    easing_kind,
)


def news(controls, measure, countries, day, title="", item="i"):
    return apply_control_news(
        controls,
        measure=measure,
        countries=countries,
        effective=day,
        source="mofcom",
        item_id=item,
        event_id=f"e-{item}",
        url="",
        title=title,
        summary="",
        classification="public",
    )


def test_licence_regime_opens_a_control_in_force_from_its_effective_date():
    controls, changes = news({}, "export_licence", ["CN"], date(2023, 8, 1), item="a")
    assert changes == ["opened CN|export_licence"]
    assert controls_in_force(controls, date(2023, 7, 31)) == []
    assert controls["CN|export_licence"].status(date(2023, 7, 31)) == "announced"
    in_force = controls_in_force(controls, date(2023, 8, 1))
    assert [(c.country, c.measure, c.since, c.item_id) for c in in_force] == [
        ("CN", "export_licence", "2023-08-01", "a")
    ]
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


def test_an_easing_ends_only_the_measures_it_names():
    controls, _ = news({}, "export_ban", ["CN"], date(2024, 12, 3), item="a")
    controls, _ = news(controls, "export_licence", ["CN"], date(2024, 12, 3), item="b")
    controls, changes = apply_control_news(
        controls,
        measure="easing",
        countries=["CN"],
        effective=date(2025, 11, 9),
        source="mofcom",
        item_id="c",
        event_id="e-c",
        url="",
        title="China lifts the export licence requirement",
        summary="",
        classification="public",
        eases=eased_measures(
            ["signal=export_licence: export licence", "signal=easing: lifts the export licence requirement"]
        ),
    )
    assert changes == ["lifted CN|export_licence"]
    assert [c.measure for c in controls_in_force(controls, date(2025, 11, 9))] == ["export_ban"]


def test_an_easing_naming_no_measure_ends_every_control_of_its_countries():
    assert eased_measures(["signal=restriction: export controls", "signal=easing: lifts export controls"]) == ()
    controls, _ = news({}, "export_ban", ["CN"], date(2024, 12, 3), item="a")
    controls, _ = news(controls, "export_licence", ["CN"], date(2024, 12, 3), item="b")
    controls, changes = news(controls, "easing", ["CN"], date(2025, 11, 9), title="China lifts export controls")
    assert changes == ["lifted CN|export_ban", "lifted CN|export_licence"]


def test_a_public_easing_never_ends_a_government_only_control():
    controls, _ = apply_control_news(
        {},
        measure="export_ban",
        countries=["CN"],
        effective=date(2024, 12, 3),
        source="ministry",
        item_id="a",
        event_id="e-a",
        url="",
        title="Export ban (government only)",
        summary="",
        classification="government",
    )
    controls, changes = news(controls, "easing", ["CN"], date(2025, 11, 9), title="China lifts the licence")
    assert changes == []
    assert [c.measure for c in controls_in_force(controls, date(2025, 11, 9))] == ["export_ban"]
    controls, changes = apply_control_news(
        controls,
        measure="easing",
        countries=["CN"],
        effective=date(2025, 11, 10),
        source="ministry",
        item_id="c",
        event_id="e-c",
        url="",
        title="Ban lifted",
        summary="",
        classification="government",
    )
    assert changes == ["lifted CN|export_ban"]
