"""The gallium report's table says what `mews trade shares` computes from the real Comext rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.ingest.sources.history import read_comext_file
from services.scoring.shares import import_shares_of

ROOT = Path(__file__).resolve().parents[3]
REPORT = ROOT / "docs" / "reports" / "gallium-eu-imports-2022-2024.md"
# Every gallium row of the extract is in the fixture, so its figures are the full file's.
EXTRACT = ROOT / "tests" / "fixtures" / "trade" / "comext_gallium_germanium_2022_2024.csv"
NAMES = {"Russia": "RU", "United States": "US", "Japan": "JP", "Canada": "CA"}


def table() -> dict[str, list[str]]:
    rows = re.findall(r"^\| (20\d\d) \| (.+) \|$", REPORT.read_text(encoding="utf-8"), re.M)
    return {year: [c.strip() for c in rest.split("|")] for year, rest in rows}


@pytest.mark.parametrize("year", ["2022", "2023", "2024"])
def test_report_row_matches_the_computed_shares(year):
    flows = read_comext_file(EXTRACT).events
    out = import_shares_of(flows, "gallium", year)
    extra, intra, china, others, hhi = table()[year]
    assert float(extra) == round(out["extra_eu_total"] / 1e6, 2)
    assert float(intra) == round(out["intra_eu_total"] / 1e6, 2)
    assert china == f"{out['partners']['CN'] * 100:.1f} %"
    assert int(hhi.replace(",", "")) == round(out["hhi"])
    for name, share in re.findall(r"([A-Z][a-z]+(?: [A-Z][a-z]+)?) ([\d.]+) %", others):
        assert share == f"{out['partners'][NAMES[name]] * 100:.1f}", name
    ranked = list(out["partners"])
    assert [NAMES[n] for n, _ in re.findall(r"([A-Z][a-z]+(?: [A-Z][a-z]+)?) ([\d.]+) %", others)] == ranked[1:3]
