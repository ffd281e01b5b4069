"""`mews trade table`: the extra-EU import shares table the notifier ships, rebuilt from the Comext data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXTRACT = ROOT / "tests" / "fixtures" / "trade" / "comext_gallium_germanium_2022_2024.csv"
FULL = (
    ROOT.parent
    / "shared"
    / "data"
    / "eurostat-comext-crm-imports-2022-2024"
    / "eu_comext_critical_inputs_cn8_2022_2024.csv"
)
SHIPPED = ROOT / "services" / "notify" / "data" / "import_shares.json"


def table(path: Path, out: Path, period: str = "2024") -> dict:
    result = CliRunner().invoke(
        main,
        ["trade", "table", "--file", str(path), "--period", period, "--source", "Eurostat (Comext)", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_the_table_holds_each_material_s_extra_eu_shares_as_trade_shares_prints_them(tmp_path: Path) -> None:
    built = table(EXTRACT, tmp_path / "t.json")
    assert sorted(built["materials"]) == ["gallium", "germanium"]
    assert (built["period"], built["reporter"], built["source"]) == ("2024", "EU27", "Eurostat (Comext)")
    shares = CliRunner().invoke(
        main, ["trade", "shares", "--file", str(EXTRACT), "--material", "gallium", "--period", "2024"]
    )
    assert built["materials"]["gallium"]["partners"] == json.loads(shares.stdout)["partners"]
    assert round(built["materials"]["gallium"]["partners"]["CN"], 3) == 0.679


def test_a_period_without_imports_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "trade",
            "table",
            "--file",
            str(EXTRACT),
            "--period",
            "2019",
            "--source",
            "x",
            "--out",
            str(tmp_path / "t.json"),
        ],
    )
    assert result.exit_code != 0
    assert "no EU27 imports" in result.output


@pytest.mark.skipif(not FULL.exists(), reason="the full Comext extract is not beside the repository")
def test_the_shipped_table_is_the_one_the_full_extract_builds(tmp_path: Path) -> None:
    shipped = json.loads(SHIPPED.read_text())
    assert table(FULL, tmp_path / "t.json", shipped["period"])["materials"] == shipped["materials"]
