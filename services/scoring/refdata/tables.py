"""The reference tables shipped in services/scoring/refdata/data/, read into lookups scoring uses.

Tables (CSV, UTF-8, one header row; written by `mews refdata build`, see build.py; sources in manifest.json):
- governance.csv: country (ISO alpha-2), year, va, pv, ge, rq, rl, cc: WGI estimates (about -2.5..+2.5).
- production.csv: edition (MCS2023, MCS2024), material (catalog id), stage (extraction | processing), year,
  country (ISO alpha-2, "world" = USGS world total, "other" = "Other countries"), quantity, unit (as published:
  kg, t, kt, ...), estimated (1 when USGS marks it estimated).
- study_scores.csv: material, assessment (2011..2023), sr, ei: the EU CRM study's supply risk and economic
  importance.
- study_shares.csv: scope (global | eu), material, stage, country, share (0..1), below (1 when published as
  "<x%": an upper bound), t (the study's trade-related factor).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger(__name__)
# Rows per reference table in use (source = governance | production | study_scores | study_shares): a table
# that drops to zero after a rebuild shows on the dashboard before it shows in a score.
REFERENCE_ROWS = Gauge("mews_scoring_reference_rows", "Rows of each reference table scoring loaded", ["source"])

DATA_DIR = Path(__file__).resolve().parent / "data"
GOVERNANCE_FILE = "governance.csv"
PRODUCTION_FILE = "production.csv"
STUDY_SCORES_FILE = "study_scores.csv"
STUDY_SHARES_FILE = "study_shares.csv"
MANIFEST_FILE = "manifest.json"
WGI_INDICATORS = ("va", "pv", "ge", "rq", "rl", "cc")
STAGES = ("extraction", "processing")
# Mass units USGS uses in its column names, in tonnes; other units (carats, cubic metres) are not masses.
TONNES_PER_UNIT = {"kg": 0.001, "t": 1.0, "kt": 1000.0, "mt": 1e6, "mmt": 1e6}


@dataclass(frozen=True)
class WorldProduction:
    """One material's world production at one stage in one year, from one USGS edition."""

    material: str
    stage: str
    year: int
    edition: str
    unit: str
    by_country: Mapping[str, float]  # ISO alpha-2 -> quantity; only countries USGS names
    other: float | None  # "Other countries", when published
    world: float | None  # the published (rounded) world total

    @property
    def total(self) -> float:
        """The denominator of shares: the world total, or the listed rows when they sum to more (rounding)."""
        listed = math.fsum(self.by_country.values()) + (self.other or 0.0)
        return max(self.world or 0.0, listed)

    def shares(self) -> dict[str, float]:
        """Each named country's share (0..1) of world production; empty when there is no positive total."""
        total = self.total
        if total <= 0:
            return {}
        return {c: q / total for c, q in self.by_country.items() if q > 0}


@dataclass(frozen=True)
class ReferenceData:
    """Every reference table, with where it came from (manifest.json)."""

    governance: Mapping[tuple[str, int], Mapping[str, float]]
    production: tuple[dict[str, Any], ...]
    study_scores: tuple[dict[str, Any], ...]
    study_shares: tuple[dict[str, Any], ...]
    manifest: Mapping[str, Any] = field(default_factory=dict)
    _production_by_material: dict[str, list[dict[str, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for r in self.production:
            self._production_by_material.setdefault(r["material"], []).append(r)

    def citation(self, table: str) -> str:
        """ "source, edition, licence" of a table, for configuration and reports."""
        meta = self.manifest.get("tables", {}).get(table, {})
        return "; ".join(str(meta[k]) for k in ("source", "edition", "licence") if meta.get(k))

    def governance_years(self, indicator: str = "pv") -> list[int]:
        """Years that have at least one estimate of the indicator, ascending."""
        return sorted({y for (_, y), v in self.governance.items() if v.get(indicator) is not None})

    def governance_estimates(self, indicator: str = "pv", year: int | None = None) -> dict[str, float]:
        """Country -> WGI estimate of one indicator in one year (the latest year when None)."""
        if indicator not in (*WGI_INDICATORS, "mean"):
            raise ValueError(f"unknown WGI indicator {indicator!r} (known: {', '.join(WGI_INDICATORS)}, mean)")
        if year is None:
            years = self.governance_years("pv" if indicator == "mean" else indicator)
            if not years:
                return {}
            year = years[-1]
        out = {}
        for (country, y), values in self.governance.items():
            if y != year:
                continue
            if indicator == "mean":
                # The average of the six dimensions, only where all six are published.
                six = [values.get(i) for i in WGI_INDICATORS]
                if all(v is not None for v in six):
                    out[country] = math.fsum(six) / 6.0  # type: ignore[arg-type]
            elif values.get(indicator) is not None:
                out[country] = values[indicator]
        return out

    def production_editions(self) -> list[str]:
        return sorted({r["edition"] for r in self.production})

    def world_production(
        self,
        material: str,
        stage: str,
        year: int,
        edition: str | None = None,
    ) -> WorldProduction | None:
        """USGS world production of a material at a stage in a year: the newest edition that has it by default."""
        rows = [
            r
            for r in self._production_by_material.get(material, ())
            if r["stage"] == stage and r["year"] == year and (edition is None or r["edition"] == edition)
        ]
        if not rows:
            return None
        chosen = max(r["edition"] for r in rows)
        rows = [r for r in rows if r["edition"] == chosen]
        # A country may have several rows (US helium: from natural gas, from the Cliffside Field): they add up.
        by_country: dict[str, float] = {}
        for r in rows:
            if r["country"] not in ("world", "other"):
                by_country[r["country"]] = by_country.get(r["country"], 0.0) + r["quantity"]
        others = [r["quantity"] for r in rows if r["country"] == "other"]
        worlds = [r["quantity"] for r in rows if r["country"] == "world"]
        other = math.fsum(others) if others else None
        world = max(worlds) if worlds else None
        return WorldProduction(
            material=material,
            stage=stage,
            year=year,
            edition=chosen,
            unit=rows[0]["unit"],
            by_country=by_country,
            other=other,
            world=world,
        )

    def production_years(self, material: str, stage: str | None = None) -> list[int]:
        return sorted(
            {r["year"] for r in self._production_by_material.get(material, ()) if stage is None or r["stage"] == stage}
        )

    def production_stages(self, material: str) -> list[str]:
        """The stages USGS covers for a material, the one its EU production counts at first."""
        return list(dict.fromkeys(r["stage"] for r in self._production_by_material.get(material, ())))

    def eu_production_t(self, material: str, year: int, eu_members: frozenset[str]) -> float | None:
        """EU-27 production in tonnes at the material's first stage, from the countries USGS names.

        None when it cannot be said from the data: the unit is not a mass, or no member state is named while
        "Other countries" produce something (EU output may hide in it). 0 when no member state is named and
        the named countries make up the world total.
        """
        stages = self.production_stages(material)
        wp = self.world_production(material, stages[0], year) if stages else None
        if wp is None or wp.unit not in TONNES_PER_UNIT:
            return None
        eu = [q for c, q in wp.by_country.items() if c in eu_members]
        if not eu and (wp.other or 0.0) > 0:
            return None
        return math.fsum(eu) * TONNES_PER_UNIT[wp.unit]

    def study_score(self, material: str, assessment: int = 2023) -> dict[str, Any] | None:
        return next((r for r in self.study_scores if r["material"] == material and r["assessment"] == assessment), None)

    def study_supply_shares(self, material: str, stage: str, scope: str = "global") -> dict[str, float]:
        """The study's published shares by country (bounds such as "<0.1%" left out)."""
        return {
            r["country"]: r["share"]
            for r in self.study_shares
            if r["scope"] == scope and r["material"] == material and r["stage"] == stage and not r["below"]
        }


def _num(text: str) -> float | None:
    return float(text) if text != "" else None


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@functools.cache
def load_reference_data(data_dir: Path = DATA_DIR) -> ReferenceData:
    """The reference tables in `data_dir` (the shipped ones by default), read once per directory."""
    data_dir = Path(data_dir)
    if not (data_dir / MANIFEST_FILE).exists():
        raise FileNotFoundError(f"no reference data in {data_dir}: run `mews refdata build --from DIR`")
    governance: dict[tuple[str, int], dict[str, float]] = {}
    for r in _rows(data_dir / GOVERNANCE_FILE):
        governance[(r["country"], int(r["year"]))] = {i: v for i in WGI_INDICATORS if (v := _num(r[i])) is not None}
    production = tuple(
        {
            "edition": r["edition"],
            "material": r["material"],
            "stage": r["stage"],
            "year": int(r["year"]),
            "country": r["country"],
            "quantity": float(r["quantity"]),
            "unit": r["unit"],
            "estimated": r["estimated"] == "1",
        }
        for r in _rows(data_dir / PRODUCTION_FILE)
    )
    scores = tuple(
        {"material": r["material"], "assessment": int(r["assessment"]), "sr": _num(r["sr"]), "ei": _num(r["ei"])}
        for r in _rows(data_dir / STUDY_SCORES_FILE)
    )
    shares = tuple(
        {
            "scope": r["scope"],
            "material": r["material"],
            "stage": r["stage"],
            "country": r["country"],
            "share": float(r["share"]),
            "below": r["below"] == "1",
            "t": _num(r["t"]),
        }
        for r in _rows(data_dir / STUDY_SHARES_FILE)
    )
    manifest = json.loads((data_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    counts = {
        "governance": len(governance),
        "production": len(production),
        "study_scores": len(scores),
        "study_shares": len(shares),
    }
    for name, rows in counts.items():
        REFERENCE_ROWS.labels(name).set(rows)
    log.info(
        "reference data loaded",
        extra={
            "rows": counts,
            "editions": {name: meta.get("edition", "") for name, meta in manifest.get("tables", {}).items()},
        },
    )
    return ReferenceData(
        governance=governance, production=production, study_scores=scores, study_shares=shares, manifest=manifest
    )
