"""The backtest driver: files in, merged by event time, breach report out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import backtest, read_pinksheet, read_prices
from services.scoring.backtest import merge_inputs, read_jsonl, replay, write_report
from services.scoring.config import load_config
from shared.events import NewsReported, encode
from shared.kafka import event_id_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scoring"
EXTRACT = FIXTURES / "pinksheet_metals_2020_2023.csv"
WORKBOOK_EXTRACT = FIXTURES.parent / "ingest" / "pinksheet_extract.xlsx"
WORKBOOK = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "data"
    / "worldbank-cmo-monthly"
    / "CMO-Historical-Data-Monthly.xlsx"
)


def test_extract_replay_flags_the_nickel_squeeze_of_march_2022():
    inputs = merge_inputs([read_prices(EXTRACT)])
    assert len(inputs) == 164
    result = replay(inputs, load_config())
    assert result.rejected == {}
    nickel = [
        (b.observed_at.date().isoformat(), b.rule, b.severity.value, b.status.value)
        for b in result.breaches
        if b.material == "nickel" and b.observed_at.year == 2022
    ]
    assert ("2022-03-01", "price-change-30d", "critical", "firing") in nickel
    assert ("2022-04-01", "price-change-30d", "critical", "resolved") in nickel
    (b,) = [
        b
        for b in result.breaches
        if b.material == "nickel" and b.rule == "price-change-30d" and b.observed_at.isoformat().startswith("2022-03")
    ]
    # Pink Sheet monthly averages: February 24,015.55, March 33,924.18 USD/t
    assert b.value == pytest.approx((33924.18 / 24015.55 - 1) * 100)
    assert b.summary == ("Nickel: 30-day price change +41% is above the critical threshold of +35% (since 2022-03-01)")


def test_report_has_the_agreed_columns_in_csv_and_jsonl():
    result = replay(merge_inputs([read_prices(EXTRACT)]), load_config())
    out = io.StringIO()
    n = write_report(result.breaches, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert n == len(rows) == len(result.breaches) > 0
    assert {"time", "material", "rule", "severity", "status", "value", "threshold", "summary", "fingerprint"} <= set(
        rows[0]
    )
    out = io.StringIO()
    write_report(result.breaches, out, "jsonl")
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["fingerprint"] == rows[0]["fingerprint"]


def test_cli_writes_the_report_and_counts_to_stderr(tmp_path):
    out = tmp_path / "report.jsonl"
    res = CliRunner().invoke(
        backtest, ["--prices", str(EXTRACT), "--format", "jsonl", "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert any('"material":"nickel"' in line and '"rule":"price-change-30d"' in line for line in lines)


def test_replaying_twice_gives_the_same_report():
    inputs = merge_inputs([read_prices(EXTRACT)])
    a, b = io.StringIO(), io.StringIO()
    write_report(replay(inputs, load_config()).breaches, a)
    write_report(replay(merge_inputs([read_prices(EXTRACT)]), load_config()).breaches, b)
    assert a.getvalue() == b.getvalue()


def test_jsonl_accepts_fields_or_cloudevents_and_counts_unreadable_lines(tmp_path):
    item = NewsReported(
        material="gallium",
        item_id="n1",
        source="mofcom",
        title="China bans gallium exports",
        published_at="2023-07-03T00:00:00Z",
        countries=["CN"],
        measure="export_ban",
        relevant=True,
    )
    path = tmp_path / "news.jsonl"
    path.write_text(
        "\n".join(
            [
                item.model_dump_json(),
                encode(item, source="test", event_id="ce-1").decode(),
                "{not json",
                json.dumps({"material": "gallium"}),
            ]
        )
        + "\n"
    )
    report = read_jsonl(path, NewsReported)
    assert [i.event_id for i in report.inputs][1] == "ce-1"
    assert sum(report.unreadable.values()) == 2
    result = replay(merge_inputs([report]), load_config())
    assert result.rejected == {"duplicate": 1}
    assert [b.rule for b in result.breaches] == ["export-control-in-force"]


@pytest.mark.skipif(not WORKBOOK.exists(), reason="the Pink Sheet workbook (sibling shared/data folder) is absent")
def test_real_workbook_maps_codes_to_catalog_ids_and_skips_missing_months():
    report = read_pinksheet(WORKBOOK)
    materials = {i.event.material for i in report.inputs}
    assert materials == {
        "aluminium",
        "copper",
        "lead",
        "tin",
        "nickel",
        "zinc",
        "iron-ore",
        "platinum",
        "gold",
        "silver",
        "phosphate-rock",
        "potash",
    }
    nickel = {
        i.event.observed_at.strftime("%Y-%m"): i.event.price for i in report.inputs if i.event.material == "nickel"
    }
    assert nickel["2022-03"] == pytest.approx(33924.18)
    assert report.unreadable == {}


def test_workbook_extract_is_read_as_ingest_publishes_it_with_catalog_ids_and_event_ids():
    report = read_prices(WORKBOOK_EXTRACT)
    assert report.unreadable == {}
    # 29 months (2021M01-2023M05) x 7 catalog metals the extract holds
    assert len(report.inputs) == 29 * 7
    assert {i.event.material for i in report.inputs} == {
        "aluminium",
        "copper",
        "nickel",
        "tin",
        "zinc",
        "iron-ore",
        "platinum",
    }
    (march,) = [
        i
        for i in report.inputs
        if i.event.series == "NICKEL" and i.event.observed_at.month == 3 and i.event.observed_at.year == 2022
    ]
    assert (march.event.price, march.event.currency, march.event.unit) == (33924.18, "USD", "mt")
    assert march.event.source == "worldbank-pinksheet"
    # the deterministic id ingest gives the same observation (from its dedup key)
    assert march.event_id == event_id_for("worldbank-pinksheet|nickel|NICKEL|2022-03-01T00:00:00+00:00")


def test_unreadable_workbook_and_unknown_series_are_counted_with_reasons_not_raised(tmp_path):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    report = read_prices(junk)
    assert report.inputs == []
    assert sum(report.unreadable.values()) == 1
    assert "not a readable xlsx workbook" in next(iter(report.unreadable))
    report = read_pinksheet(WORKBOOK_EXTRACT, {"NICKEL": "nickel", "NOPE": "nickel"})
    assert len(report.inputs) == 29
    assert report.unreadable == {"pinksheet: series NOPE is not in the workbook": 1}


WORKBOOK_2026 = WORKBOOK.parents[1] / "worldbank-cmo-monthly-2026" / "CMO-Historical-Data-Monthly.xlsx"
WORKBOOK_2026_EXTRACT = FIXTURES.parent / "ingest" / "pinksheet_2026_extract.xlsx"


def test_2026_edition_without_a_code_row_gives_the_same_series_by_their_names():
    report = read_prices(WORKBOOK_2026_EXTRACT)
    assert report.unreadable == {}
    # 29 months (2024M01-2026M05) x 8 catalog series the extract holds
    assert len(report.inputs) == 29 * 8
    assert {i.event.series for i in report.inputs} == {
        "ALUMINUM",
        "IRON_ORE",
        "COPPER",
        "NICKEL",
        "Tin",
        "Zinc",
        "PLATINUM",
        "POTASH",
    }
    nickel = {i.event.observed_at.strftime("%Y-%m"): i.event.price for i in report.inputs if i.event.series == "NICKEL"}
    # The data folder's sanity checks: 15,445 $/mt in 2024M12, 18,806 in 2026M05.
    assert (round(nickel["2024-12"]), round(nickel["2026-05"])) == (15445, 18806)
    (potash,) = {i.event.material for i in report.inputs if i.event.series == "POTASH"}
    assert potash == "potash"  # "Potassium chloride **": the footnote mark is not part of the name


@pytest.mark.skipif(not WORKBOOK_2026.exists(), reason="the 2026 Pink Sheet (sibling shared/data folder) is absent")
def test_real_2026_workbook_reads_every_metal_to_2026_05_as_the_2023_edition_names_them():
    new, old = read_pinksheet(WORKBOOK_2026), read_pinksheet(WORKBOOK)
    assert new.unreadable == {}
    assert {i.event.material for i in new.inputs} == {i.event.material for i in old.inputs}
    months = {i.event.observed_at.strftime("%Y-%m") for i in new.inputs if i.event.material == "copper"}
    assert (min(months), max(months), len(months)) == ("1960-01", "2026-05", 797)
    old_prices = {(i.event.series, i.event.observed_at): i.event.price for i in old.inputs}
    same = [
        (k, v)
        for i in new.inputs
        if (k := (i.event.series, i.event.observed_at)) in old_prices
        for v in [i.event.price]
    ]
    assert len(same) > 8000  # the editions overlap from 1960 to 2023 under the same series codes
    copper_2026 = [
        i.event.price
        for i in new.inputs
        if i.event.series == "COPPER" and i.event.observed_at.strftime("%Y-%m") == "2026-05"
    ]
    assert copper_2026 == [pytest.approx(13543, abs=1)]
