"""Normalisation: every record becomes a typed event in a stated unit and currency, or a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.observation import (
    Accepted,
    Candidate,
    Limits,
    PriceTerms,
    Rejected,
    Skipped,
    _remembered_time,
    normalise_leadtime,
    normalise_period,
    normalise_price,
    normalise_stock,
    normalise_trade,
    parse_time,
)
from shared.events import Classification

from .conftest import NOW


def price(**fields) -> Candidate:
    base = {"material": "gallium", "price": 300, "currency": "USD", "unit": "kg", "observed_at": "2023-08-01"}
    return Candidate("price", "test", base | fields, b"{}")


def test_price_in_usd_per_tonne_converts_to_eur_per_kg_at_the_configured_rate(catalog, limits):
    terms = PriceTerms(to_currency="EUR", fx_rate=0.9, to_unit="kg")
    outcome = normalise_price(price(material="nickel", price=20000, unit="mt"), catalog, limits, terms)
    assert isinstance(outcome, Accepted)
    event = outcome.events[0]
    # 20000 USD/t * 0.9 EUR/USD / 1000 kg/t
    assert event.price == pytest.approx(18.0)
    assert (event.currency, event.unit, event.material) == ("EUR", "kg", "nickel")


def test_troy_ounce_price_converts_to_per_kilogram(catalog, limits):
    outcome = normalise_price(
        price(material="platinum", price=1000, unit="troy oz"), catalog, limits, PriceTerms(to_unit="kg")
    )
    assert isinstance(outcome, Accepted)
    assert outcome.events[0].price == pytest.approx(1000 / 0.0311034768)


def test_price_per_dry_metric_tonne_unit_cannot_be_converted_to_kg(catalog, limits):
    outcome = normalise_price(price(material="iron ore", unit="dmtu"), catalog, limits, PriceTerms(to_unit="kg"))
    assert isinstance(outcome, Rejected)
    assert outcome.code == "unit_conversion"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -5, 0, "NaN", "-1e3", "1,234.5", "", None, True])
def test_price_that_is_not_positive_and_finite_is_rejected(catalog, limits, bad):
    outcome = normalise_price(price(price=bad), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "invalid_price"


def test_unknown_material_is_rejected_naming_it(catalog, limits):
    outcome = normalise_price(price(material="unobtainium"), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "unknown_material"
    assert "unobtainium" in outcome.detail


def test_material_alias_in_another_language_resolves_to_the_catalog_id(catalog, limits):
    outcome = normalise_price(price(material="Antimoon"), catalog, limits)
    assert isinstance(outcome, Accepted)
    assert outcome.events[0].material == "antimony"


def test_timestamp_far_in_the_future_is_rejected_but_clock_skew_is_tolerated(catalog, limits):
    far = normalise_price(price(observed_at="2999-01-01"), catalog, limits)
    assert isinstance(far, Rejected)
    assert far.code == "future_time"
    skewed = normalise_price(price(observed_at=(NOW + timedelta(hours=2)).isoformat()), catalog, limits)
    assert isinstance(skewed, Accepted)


def test_offsets_become_utc_and_naive_times_are_read_as_utc():
    assert parse_time("2024-12-31T16:00:00+01:00") == datetime(2024, 12, 31, 15, 0, tzinfo=UTC)
    assert parse_time("2024-12-31 16:00") == datetime(2024, 12, 31, 16, 0, tzinfo=UTC)
    assert parse_time("2023-07") == datetime(2023, 7, 1, tzinfo=UTC)
    assert parse_time(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_a_time_text_reads_the_same_when_repeated_padded_or_after_a_failure():
    # Short texts are remembered: the same text again, in another offset, or padded past the cut, reads alike.
    assert parse_time("2024-12-31T16:00:00+01:00") == parse_time("2024-12-31T16:00:00+01:00")
    assert parse_time("2024-12-31T15:00:00Z").tzinfo is UTC
    remembered = _remembered_time.cache_info().currsize
    assert parse_time(" " * 100 + "2024-12-31T15:00:00Z") == datetime(2024, 12, 31, 15, 0, tzinfo=UTC)
    assert _remembered_time.cache_info().currsize == remembered  # a padded text is never kept
    for _ in range(2):  # a failure is not remembered as an answer
        with pytest.raises(ValueError, match="month must be in 1..12"):
            parse_time("2024-13-01")


def test_unparseable_time_is_rejected(catalog, limits):
    outcome = normalise_price(price(observed_at="last tuesday"), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "invalid_time"


def test_price_without_currency_is_rejected(catalog, limits):
    outcome = normalise_price(price(currency=""), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "missing_currency"


def test_dedup_key_is_the_same_for_the_same_source_material_and_time(catalog, limits):
    a = normalise_price(price(observed_at="2023-08-01T00:00:00Z", price=300), catalog, limits)
    b = normalise_price(price(observed_at="2023-08-01", price=301), catalog, limits)
    assert isinstance(a, Accepted)
    assert isinstance(b, Accepted)
    assert a.dedup_keys() == b.dedup_keys()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("202309", "2023-09"),
        ("2023-09", "2023-09"),
        ("2023", "2023"),
        ("202352", "2023"),
        (2023, "2023"),
        ("2023.0", "2023"),
        ("202313", None),
        ("23-09", None),
    ],
)
def test_periods_of_comext_and_comtrade_read_as_year_or_month(raw, expected):
    assert normalise_period(raw) == expected


def trade(**fields) -> Candidate:
    base = {
        "reporter": "NL",
        "partner": "CN",
        "hs_code": "81129289",
        "flow": "import",
        "period": "202309",
        "quantity_kg": "4210",
        "value_eur": "1834520",
    }
    return Candidate("trade", "test", base | fields, b"{}")


def test_trade_flow_maps_its_cn_code_to_materials(catalog, limits):
    outcome = normalise_trade(trade(hs_code="81101000"), catalog, limits)
    assert isinstance(outcome, Accepted)
    assert [e.material for e in outcome.events] == ["antimony"]
    event = outcome.events[0]
    assert (event.reporter, event.partner, event.period, event.quantity_kg) == ("NL", "CN", "2023-09", 4210.0)


def test_comext_protocol_code_el_is_greece(catalog, limits):
    outcome = normalise_trade(trade(reporter="EL", hs_code="81101000"), catalog, limits)
    assert isinstance(outcome, Accepted)
    assert outcome.events[0].reporter == "GR"


def test_trade_with_a_code_no_material_uses_is_skipped_not_rejected(catalog, limits):
    outcome = normalise_trade(trade(hs_code="08045000"), catalog, limits)
    assert isinstance(outcome, Skipped)
    assert outcome.code == "no_material"


def test_trade_with_an_undisclosed_partner_is_skipped(catalog, limits):
    outcome = normalise_trade(trade(partner="QU", hs_code="81101000"), catalog, limits)
    assert isinstance(outcome, Skipped)
    assert outcome.code == "aggregate_partner"


def test_trade_with_negative_quantity_is_rejected(catalog, limits):
    outcome = normalise_trade(trade(quantity_kg="-4", hs_code="81101000"), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "invalid_number"


def test_lead_time_in_weeks_is_stated_in_days(catalog, limits):
    c = Candidate(
        "leadtime",
        "t",
        {
            "material": "gallium",
            "lead_time_weeks": "12",
            "quoted_at": "2023-08-15",
            "origin_country": "China",
            "supplier": "X",
        },
        b"",
    )
    outcome = normalise_leadtime(c, catalog, limits)
    assert isinstance(outcome, Accepted)
    assert outcome.events[0].lead_time_days == 84
    assert outcome.events[0].origin_country == "CN"


def test_lead_time_beyond_ten_years_is_rejected(catalog):
    c = Candidate("leadtime", "t", {"material": "gallium", "lead_time_days": "4000", "quoted_at": "2023-08-15"}, b"")
    outcome = normalise_leadtime(c, catalog, Limits(now=NOW))
    assert isinstance(outcome, Rejected)
    assert outcome.code == "invalid_leadtime"


def stock_item(**fields) -> Candidate:
    base = {"material": "gallium", "tonnes": "12.5", "reported_at": "2025-01-01", "holder": "NL reserve"}
    return Candidate("stock", "api:ministry", {**base, **fields}, b"")


def test_stock_report_is_government_only_unless_classified_otherwise(catalog, limits):
    (event,) = normalise_stock(stock_item(), catalog, limits).events
    assert (event.material, event.tonnes, event.holder) == ("gallium", 12.5, "NL reserve")
    assert event.classification == Classification.GOVERNMENT
    (public,) = normalise_stock(stock_item(classification="public"), catalog, limits).events
    assert public.classification == Classification.PUBLIC


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"tonnes": "-1"}, "invalid_stock"),
        ({"tonnes": "lots"}, "invalid_stock"),
        ({"material": "unobtainium"}, "unknown_material"),
        ({"reported_at": "2031-01-01"}, "future_time"),
        ({"classification": "secret"}, "invalid_classification"),
    ],
)
def test_unusable_stock_reports_are_rejected_with_the_reason(catalog, limits, fields, code):
    outcome = normalise_stock(stock_item(**fields), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == code
