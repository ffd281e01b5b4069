"""Reference data: built from extracts of the published files, read back, and checked against the EU study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from services.cli import main
from services.scoring.config import load_config
from services.scoring.indicators.concentration import EU_MEMBERS
from services.scoring.refdata.build import build_tables
from services.scoring.refdata.supply import compare_with_study, material_supply, ranks, spearman
from services.scoring.refdata.tables import DATA_DIR, load_reference_data

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "refdata"
FULL_DATA = ROOT.parent / "shared" / "data"  # the published files, beside the repository when present


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refdata")
    build_tables(FIXTURES, out)
    return out


def test_build_writes_every_table_with_its_source_edition_licence_and_input_hashes(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert set(manifest["tables"]) == {"governance", "production", "study_scores", "study_shares"}
    for meta in manifest["tables"].values():
        assert meta["source"]
        assert meta["edition"]
        assert meta["licence"]
        assert meta["rows"] > 0
        assert (built / meta["file"]).exists()
        assert all(len(digest) == 64 for digest in meta["inputs"].values())
    assert "CC BY 4.0" in manifest["tables"]["governance"]["licence"]
    assert "Public domain" in manifest["tables"]["production"]["licence"]
    assert manifest["unmatched_country_names"] == []


def test_wgi_legacy_codes_are_mapped_and_estimates_kept(built):
    ref = load_reference_data(built)
    pv = ref.governance_estimates("pv", 2023)
    assert pv["CN"] == pytest.approx(-0.51)  # CHNpv2023 in the rounded CSV
    assert pv["CD"] == pytest.approx(-2.04)  # published under ZAR (-2.045 in the xlsx)
    assert "RO" in pv  # published under ROM
    assert ref.governance_years("pv") == [2021, 2022, 2023]


def test_usgs_world_production_shares_by_hand(built):
    ref = load_reference_data(built)
    gallium = ref.world_production("gallium", "processing", 2023)
    assert (gallium.edition, gallium.unit, gallium.world) == ("MCS2024", "kg", 610000.0)
    assert gallium.shares()["CN"] == pytest.approx(600000 / 610000)  # 98.4 %, USGS T5 says 98 %
    cobalt = ref.world_production("cobalt", "extraction", 2023)
    assert cobalt.by_country["CD"] == 170000.0  # "Congo (Kinshasa)"
    assert cobalt.shares()["CD"] == pytest.approx(170000 / 230000)
    assert "KR" in ref.world_production("gallium", "processing", 2022).by_country  # "Korea, Republic ofe"


def test_a_later_edition_revises_an_earlier_one_and_both_stay_readable(built):
    ref = load_reference_data(built)
    assert ref.world_production("gallium", "processing", 2022).by_country["CN"] == 600000.0  # MCS2024
    assert ref.world_production("gallium", "processing", 2022, "MCS2023").by_country["CN"] == 540000.0


def test_two_rows_of_one_country_add_up(built):
    # MCS2023 helium: United States "extracted from natural gas" 69 and "from Cliffside Field" 7 (mcm).
    helium = load_reference_data(built).world_production("helium", "extraction", 2021)
    assert helium.by_country["US"] == 76.0


def test_withheld_and_unavailable_figures_give_no_shares(built):
    ref = load_reference_data(built)
    germanium = ref.world_production("germanium", "processing", 2023)
    assert germanium is None or germanium.shares() == {}
    assert material_supply(ref, "germanium") == []


def test_eu_production_is_what_usgs_says_and_unknown_otherwise(built):
    ref = load_reference_data(built)
    assert ref.eu_production_t("gallium", 2023, EU_MEMBERS) == 0.0  # no member state, no "other countries"
    assert ref.eu_production_t("germanium", 2023, EU_MEMBERS) is None  # no figures at all
    greece_bauxite_kt = ref.world_production("aluminium", "extraction", 2023).by_country["GR"]
    assert ref.eu_production_t("aluminium", 2023, EU_MEMBERS) == pytest.approx(greece_bauxite_kt * 1000)


def test_study_shares_read_through_their_encoding_and_transcription_slips(built):
    ref = load_reference_data(built)
    assert ref.study_supply_shares("antimony", "extraction")["TR"] == pytest.approx(0.025)  # "Türkiye", cp1252
    assert ref.study_supply_shares("silicon-metal", "processing", "eu")["DE"] == pytest.approx(0.06)  # "6"
    assert ref.study_supply_shares("gallium", "processing")["CN"] == pytest.approx(0.938)
    bounds = [r for r in ref.study_shares if r["below"]]
    assert bounds
    assert all(r["share"] == pytest.approx(0.001) for r in bounds)
    assert ref.study_score("gallium") == {"material": "gallium", "assessment": 2023, "sr": 3.9, "ei": 3.7}


def test_scoring_config_reads_governance_from_the_tables(built):
    cfg = load_config(refdata=load_reference_data(built))
    assert cfg.governance["CN"] == pytest.approx((2.5 - -0.51) / 5)
    assert "Worldwide Governance Indicators" in cfg.governance_source
    assert "2023" in cfg.governance_source
    assert cfg.eu_production_t["gallium"] == 0.0
    assert "germanium" not in cfg.eu_production_t


def test_spearman_matches_pandas_including_ties():
    xs = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0]
    ys = [2.5, 0.5, 1.0, 3.0, 4.0, 4.0]
    assert ranks(xs) == [4.0, 1.0, 2.5, 2.5, 6.0, 5.0]
    # Spearman's rho is Pearson's r of average ranks (pandas' rank, numpy's corrcoef).
    assert spearman(xs, ys) == pytest.approx(np.corrcoef(pd.Series(xs).rank(), pd.Series(ys).rank())[0, 1])
    assert spearman([1, 2], [2, 1]) is None


def test_validation_against_the_study_on_the_fixture_extracts(built):
    ref = load_reference_data(built)
    cmp = compare_with_study(ref, 2021)
    got = {m.material for m in cmp.materials}
    assert {"gallium", "cobalt", "antimony", "lithium", "tungsten", "natural-graphite"} <= got
    frame = pd.DataFrame([(m.hhi_wgi, m.sr) for m in cmp.materials], columns=["ours", "sr"])
    assert cmp.spearman == pytest.approx(np.corrcoef(frame["ours"].rank(), frame["sr"].rank())[0, 1])
    gallium = next(m for m in cmp.materials if m.material == "gallium")
    assert (gallium.stage, gallium.top_producer) == ("processing", "CN")
    # HHI_WGI by hand: shares of the 2021 world total squared, times (2.5 - mean of six WGI) * 2.
    mean = ref.governance_estimates("mean", 2021)
    wp = ref.world_production("gallium", "processing", 2021)
    expected = sum(
        (q / wp.total) ** 2 * min(10, max(0, 2 * (2.5 - mean[c])))
        for c, q in wp.by_country.items()
        if q > 0 and c in mean
    )
    assert gallium.hhi_wgi == pytest.approx(expected)


def test_cli_builds_then_validates_and_prints_supply(tmp_path):
    runner = CliRunner()
    built = runner.invoke(main, ["refdata", "build", "--from", str(FIXTURES), "--out", str(tmp_path)])
    assert built.exit_code == 0, built.output
    assert "governance.csv" in built.output
    checked = runner.invoke(main, ["refdata", "validate", "--data", str(tmp_path), "--year", "2021"])
    assert checked.exit_code == 0, checked.output
    assert "Spearman rho, ours vs SR:" in checked.output
    assert "gallium" in checked.output
    supply = runner.invoke(main, ["refdata", "supply", "--material", "cobalt", "--data", str(tmp_path)])
    assert supply.exit_code == 0, supply.output
    (stage,) = json.loads(supply.output)
    assert (stage["stage"], stage["top_producer"], stage["year"]) == ("extraction", "CD", 2023)


def test_build_names_the_file_and_row_of_an_unreadable_value(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for folder in ("usgs-mcs2024", "eu-crm-2023-study-tables"):
        (src / folder).symlink_to(FIXTURES / folder)
    wgi = src / "worldbank-wgi-2024"
    wgi.mkdir()
    (wgi / "wgidataset.csv").write_text(
        "codeindyr,code,countryname,year,indicator,estimate\nCHNpv2023,CHN,China,2023,pv,about -0.5\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["refdata", "build", "--from", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "wgidataset.csv row 2" in result.output
    assert "about -0.5" in result.output


@pytest.mark.skipif(not FULL_DATA.is_dir(), reason="the published files are not beside the repository")
def test_full_published_files_build_the_shipped_tables_exactly(tmp_path):
    """With the full files present: rebuilding gives the tables shipped in the package, byte for byte."""
    build_tables(FULL_DATA, tmp_path)
    for name in ("governance.csv", "production.csv", "study_scores.csv", "study_shares.csv", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
    ref = load_reference_data(tmp_path)
    assert ref.governance_estimates("pv", 2023)["CN"] == pytest.approx(-0.5131, abs=1e-4)  # xlsx, full precision
    assert ref.governance_estimates("pv", 2023)["CD"] == pytest.approx(-2.0451, abs=1e-3)
    assert ref.world_production("cobalt", "extraction", 2023).shares()["CD"] == pytest.approx(170 / 230)
    graphite = ref.world_production("natural-graphite", "extraction", 2023)
    assert graphite.shares()["CN"] == pytest.approx(1230000 / 1600000)
    assert compare_with_study(ref, 2021).spearman is not None


def test_every_shipped_table_is_package_data_so_the_image_has_it():
    import fnmatch
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = patterns["services.scoring.refdata"]
    files = sorted(p.relative_to(DATA_DIR.parent).as_posix() for p in DATA_DIR.iterdir())
    assert files
    assert all(any(fnmatch.fnmatch(f, pat) for pat in shipped) for f in files), files
    assert "COPY services ./services" in (ROOT / "Dockerfile").read_text()


def test_loading_reports_the_rows_of_each_table_as_a_metric(built):
    from prometheus_client import REGISTRY

    load_reference_data.cache_clear()
    ref = load_reference_data(built)
    assert REGISTRY.get_sample_value("mews_scoring_reference_rows", {"source": "production"}) == len(ref.production)
    assert REGISTRY.get_sample_value("mews_scoring_reference_rows", {"source": "governance"}) == len(ref.governance)
