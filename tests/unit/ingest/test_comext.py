"""Comext on real data: the extract's layout and the bulk layout, EU27 sums, and the catalog's CN8 codes."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from services.ingest.config import SourceConfig
from services.ingest.observation import Accepted, Rejected, normalise_trade
from services.ingest.sources.trade import read_comext

TRADE = Path(__file__).resolve().parents[2] / "fixtures" / "trade"
EXTRACT = TRADE / "comext_gallium_germanium_2022_2024.csv"


def source(**kw) -> SourceConfig:
    return SourceConfig(name="comext-test", kind="comext", path=EXTRACT, **kw)


def test_member_states_rows_sum_into_one_eu27_flow_per_partner_product_and_year(catalog, limits):
    raw = list(csv.DictReader(EXTRACT.open()))
    expected: dict[tuple, float] = defaultdict(float)
    for r in raw:  # summed by hand from the file itself
        partner = {"EL": "GR", "XS": "RS"}.get(r["PARTNER_ISO"], r["PARTNER_ISO"])
        expected[(r["PRODUCT_NC"], partner, r["PERIOD"])] += float(r["VALUE_IN_EUROS"])
    events = [
        e
        for rec in read_comext(EXTRACT.read_bytes(), source(eu27_total=True))
        for e in normalise_trade(rec, catalog, limits).events
    ]
    assert {e.reporter for e in events} == {"EU27"}
    got = {(e.hs_code, e.partner, e.period): e.value_eur for e in events}
    assert got == pytest.approx(dict(expected))
    assert all(e.quantity_kg is None for e in events)  # the extract has no quantities: none are made up
    assert {e.material for e in events if e.hs_code == "81129289"} == {"gallium"}
    assert {e.material for e in events if e.hs_code == "81129295"} == {"germanium"}


def test_without_eu27_total_each_declarant_keeps_its_rows(catalog, limits):
    records = list(read_comext(EXTRACT.read_bytes(), source()))
    assert len(records) == 396
    first = normalise_trade(records[0], catalog, limits).events[0]
    assert first.reporter != "EU27"


def test_netherlands_imported_8_68_million_eur_of_chinese_gallium_in_2022(catalog, limits):
    # The largest declarant-partner flow of 81129289 that year (README sanity check of the extract).
    events = [
        e for rec in read_comext(EXTRACT.read_bytes(), source()) for e in normalise_trade(rec, catalog, limits).events
    ]
    (nl,) = [e for e in events if (e.reporter, e.partner, e.hs_code, e.period) == ("NL", "CN", "81129289", "2022")]
    assert nl.value_eur == pytest.approx(8.68e6, rel=1e-3)


BULK = b"""REPORTER,PARTNER,TRADE_TYPE,PRODUCT_NC,FLOW,STAT_PROCEDURE,PERIOD,VALUE_EUR,QUANTITY_KG
NL,CN,E,81129289,1,1,202352,1000000,2000
NL,CN,E,81129289,1,2,202352,500000,1000
DE,CN,E,81129289,1,1,202352,250000,500
EL,XS,E,81129289,1,1,202352,100,
DE,FR,I,81129289,1,1,202352,40000,80
NL,JP,E,81129289,1,1,202352,12x,10
NL,JP,E,81129289,1,2,202352,10,1
"""


def test_bulk_rows_of_several_statistical_procedures_sum_and_a_bad_number_stays_apart(catalog, limits):
    from prometheus_client import REGISTRY

    def summed() -> float:
        return REGISTRY.get_sample_value("mews_ingest_trade_rows_summed_total", {"source": "comext-test"}) or 0.0

    before = summed()
    outcomes = [normalise_trade(r, catalog, limits) for r in read_comext(BULK, source(eu27_total=True))]
    assert summed() - before == 3  # NL's two procedures and DE's row into the one EU27 flow from CN
    events = {e.partner: e for o in outcomes if isinstance(o, Accepted) for e in o.events}
    assert (events["CN"].value_eur, events["CN"].quantity_kg, events["CN"].period) == (1_750_000, 3500, "2023")
    assert events["RS"].quantity_kg is None  # Eurostat's XS is Serbia; a blank quantity is not a zero
    assert events["FR"].value_eur == 40000  # intra-EU trade is kept; shares leave it aside
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    assert [o.code for o in rejected] == ["invalid_number"]  # the bad JP row is refused alone
    assert (events["JP"].reporter, events["JP"].value_eur) == ("EU27", 10)


def test_every_cn8_of_the_extracts_mapping_finds_its_catalog_material(catalog):
    expected = {
        "81129289": ("gallium",),
        "81129295": ("germanium",),
        "81129281": ("indium",),
        "28369100": ("lithium",),
        "28252000": ("lithium",),
        "25309040": ("lithium",),
        "81052000": ("cobalt",),
        "28220000": ("cobalt",),
        "25041000": ("natural-graphite",),
        "26110000": ("tungsten",),
        "28499030": ("tungsten",),
        "28259040": ("tungsten",),
        "81129240": ("niobium",),
        "81129291": ("vanadium",),
        "28257000": ("molybdenum",),
        "75021000": ("nickel",),
        "26020000": ("manganese",),
        "28053040": ("scandium",),
        "28469050": ("neodymium", "praseodymium", "samarium"),
        "28053031": ("dysprosium", "gadolinium", "terbium"),
    }
    rows = list(csv.DictReader((TRADE / "critical_materials_cn8_mapping_v01.csv").open(encoding="utf-8")))
    assert len(rows) == 66
    unmapped = [r["cn8_code"] for r in rows if not catalog.materials_for_hs(r["cn8_code"])]
    # Only the code that bundles carbides of six metals, which no one material may claim.
    assert unmapped == ["28499050"]
    for code, materials in expected.items():
        assert catalog.materials_for_hs(code) == materials, code
