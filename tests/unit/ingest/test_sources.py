"""Source adapters on real public files (the Pink Sheet extract) and hand-made hostile ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.config import SourceConfig
from services.ingest.observation import Accepted, Candidate, Malformed, Rejected, normalise_price
from services.ingest.poll import read_records
from services.ingest.sources.feeds import read_feed
from services.ingest.sources.leadtimes import read_leadtimes
from services.ingest.sources.prices import read_csv_prices, read_json_prices
from services.ingest.sources.trade import read_comext, read_comtrade

from .conftest import INGEST_FIXTURES as F


def source(kind: str, **kw) -> SourceConfig:
    return SourceConfig(name=f"test-{kind}", kind=kind, path=F / "x", **kw)


def test_pinksheet_default_series_are_the_catalog_metals_with_units_from_the_unit_row(catalog, limits):
    body = (F / "pinksheet_extract.xlsx").read_bytes()
    records = list(read_records(body, source("pinksheet"), catalog))
    assert all(isinstance(r, Candidate) for r in records)
    # 29 months (2021M01-2023M05) x 7 metals (aluminium, copper, nickel, tin, zinc, iron ore, platinum)
    assert len(records) == 29 * 7
    nickel = {r.fields["observed_at"]: r for r in records if r.fields["series"] == "NICKEL"}
    march = nickel[datetime(2022, 3, 1, tzinfo=UTC)]
    outcome = normalise_price(march, catalog, limits)
    assert isinstance(outcome, Accepted)
    event = outcome.events[0]
    # The workbook's NICKEL cell for 2022M03 (the LME short squeeze month) reads 33924.18 ($/mt).
    assert (event.material, event.price, event.currency, event.unit) == ("nickel", 33924.18, "USD", "mt")
    platinum = [r for r in records if r.fields["series"] == "PLATINUM"]
    assert {r.fields["unit"] for r in platinum} == {"troy_oz"}


def test_pinksheet_missing_values_produce_no_records():
    body = (F / "pinksheet_extract.xlsx").read_bytes()
    # SORGHUM is ".." in every month of the extract.
    assert list(read_records(body, source("pinksheet", series={"SORGHUM": "nickel"}), None)) == []


def test_pinksheet_index_series_is_refused_as_not_a_price():
    body = (F / "pinksheet_extract.xlsx").read_bytes()
    records = list(read_records(body, source("pinksheet", series={"iNATGAS": "nickel"}), None))
    assert len(records) == 1
    assert isinstance(records[0], Malformed)
    assert "2010=100" in records[0].detail


def test_pinksheet_garbage_bytes_are_one_malformed_record():
    records = list(read_records(b"PK\x03\x04 not really a zip", source("pinksheet", series={"NICKEL": "nickel"}), None))
    assert [r.code for r in records] == ["malformed_workbook"]


def test_hostile_price_csv_keeps_every_good_row_and_gives_each_bad_one_a_reason(catalog, limits):
    body = (F / "hostile" / "prices_hostile.csv").read_bytes()
    src = source("csv_prices", currency="USD", unit="kg")
    decided = []
    for record in read_csv_prices(body, src):
        if isinstance(record, Malformed):
            decided.append(record.code)
            continue
        outcome = normalise_price(record, catalog, limits, src.price_terms())
        decided.append(outcome.code if isinstance(outcome, Rejected) else ("ok", outcome.events[0].price))
    assert decided == [
        ("ok", 302.0),
        "malformed_row",
        "malformed_row",
        "invalid_price",
        "invalid_price",
        "invalid_price",
        "unknown_material",
        "future_time",
        ("ok", 315.0),
        ("ok", 1300.0),
        "encoding",
        ("ok", 320.0),
    ]


def test_json_price_feed_reads_records_under_a_configured_path_with_mapped_columns(catalog, limits):
    src = source("json_prices", currency="USD", unit="mt", items_path="data.prices")
    records = list(read_json_prices((F / "prices.json").read_bytes(), src))
    outcomes = [normalise_price(r, catalog, limits, src.price_terms()) for r in records]
    assert all(isinstance(o, Accepted) for o in outcomes)
    events = [o.events[0] for o in outcomes]
    assert [e.price for e in events] == [12800, 22500, 38000]
    assert {e.material for e in events} == {"antimony"}
    assert events[2].observed_at == datetime(2024, 12, 31, 15, 0, tzinfo=UTC)


def test_json_that_is_not_json_is_one_malformed_record():
    records = list(read_json_prices(b'{"items": [', source("json_prices", currency="USD", unit="kg")))
    assert [r.code for r in records] == ["malformed_json"]


def test_rss_entries_carry_utc_publication_times():
    records = list(read_feed((F / "export_controls.rss").read_bytes(), source("feed")))
    assert len(records) == 3
    first = records[0].fields
    assert first["published_at"] == datetime(2023, 7, 3, 1, 0, tzinfo=UTC)  # 09:00 +08:00
    assert "gallium" in first["title"]


def test_atom_entries_are_read_like_rss():
    records = list(read_feed((F / "export_controls.atom").read_bytes(), source("feed")))
    assert [r.fields["link"] for r in records][
        0
    ] == "https://news.example.net/2024/12/03/china-ban-gallium-germanium-antimony"
    assert records[0].fields["published_at"] == datetime(2024, 12, 3, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("billion_laughs.xml", "unsafe_xml"),
        ("external_entity.xml", "unsafe_xml"),
        ("latin1_declared_utf8.xml", "encoding"),
    ],
)
def test_hostile_feed_is_refused_whole_before_feedparser_reads_it(name, code):
    body = (F / "hostile" / name).read_bytes()
    records = list(read_feed(body, source("feed")))
    assert len(records) == 1
    assert isinstance(records[0], Malformed)
    assert records[0].code == code
    assert records[0].raw == body


def test_broken_xml_is_refused():
    records = list(read_feed(b"<rss><channel><item><title>gallium</title></channel>", source("feed")))
    assert [r.code for r in records] == ["malformed_xml"]


def test_comext_rows_map_columns_and_flows(catalog, limits):
    from services.ingest.observation import normalise_trade

    records = list(read_comext((F / "comext.csv").read_bytes(), source("comext")))
    assert len(records) == 7
    outcomes = [normalise_trade(r, catalog, limits) for r in records]
    export = outcomes[4]
    assert isinstance(export, Accepted)
    assert (export.events[0].flow, export.events[0].partner, export.events[0].value_eur) == ("export", "US", 95000)
    assert [type(o).__name__ for o in outcomes] == ["Accepted"] * 5 + ["Skipped", "Skipped"]


def test_comtrade_values_in_usd_convert_at_the_configured_rate_or_are_left_empty(catalog, limits):
    from services.ingest.observation import normalise_trade

    body = (F / "comtrade.csv").read_bytes()
    with_rate = [
        normalise_trade(r, catalog, limits) for r in read_comtrade(body, source("comtrade", usd_eur_rate=0.92))
    ]
    event = with_rate[0].events[0]
    assert (event.reporter, event.partner, event.hs_code, event.period) == ("NL", "CN", "811292", "2023")
    assert event.value_eur == pytest.approx(9750400 * 0.92)
    assert event.quantity_kg == 12850
    assert [type(o).__name__ for o in with_rate] == ["Accepted", "Accepted", "Skipped", "Skipped"]
    without = normalise_trade(next(iter(read_comtrade(body, source("comtrade")))), catalog, limits)
    assert without.events[0].value_eur is None
    assert without.events[0].quantity_kg == 12850


def test_comtrade_api_json_reads_the_data_list():
    body = (
        b'{"elapsedTime": "0.1 secs", "count": 1, "data": [{"flowCode": "M", "reporterISO": "NLD", '
        b'"reporterDesc": "Netherlands", "partnerISO": "CHN", "partnerDesc": "China", "cmdCode": "811292", '
        b'"period": "202304", "netWgt": 10, "primaryValue": 1000}]}'
    )
    records = list(read_comtrade(body, source("comtrade")))
    assert records[0].fields["period"] == "202304"
    assert records[0].fields["flow"] == "import"


def test_leadtime_bulletin_rows_are_read():
    records = list(read_leadtimes((F / "leadtimes.csv").read_bytes(), source("leadtimes")))
    assert [r.fields.get("lead_time_days") or r.fields.get("lead_time_weeks") for r in records] == [
        "28",
        "12",
        "45",
        "16",
    ]
