"""Global supply concentration per material and stage from USGS world production, and its check against the
EU 2023 CRM study: how our governance-weighted HHI ranks materials against the study's supply risk (SR).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from services.scoring.indicators.concentration import SupplyConcentration, eu_scaled_wgi, supply_concentration
from services.scoring.refdata.tables import STAGES, ReferenceData


@dataclass(frozen=True)
class StageSupply:
    """Supply concentration of one material at one stage in one year, with the data it came from."""

    material: str
    stage: str
    year: int
    edition: str
    unit: str
    wgi: str  # the WGI measure the HHI_WGI used: "mean" of the six dimensions or one of them
    wgi_year: int
    concentration: SupplyConcentration

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "concentration"}
        return {**out, **asdict(self.concentration)}


def wgi_scaled(refdata: ReferenceData, measure: str, year: int) -> dict[str, float]:
    """Country -> WGI on the EU methodology's 0..10 scale (10 the weakest governance) for one year."""
    return {c: eu_scaled_wgi(e) for c, e in refdata.governance_estimates(measure, year).items()}


def _wgi_year(refdata: ReferenceData, measure: str, year: int) -> int:
    """The production year's WGI, or the latest before it (WGI ends one year before USGS's estimates)."""
    years = [y for y in refdata.governance_years("pv" if measure == "mean" else measure) if y <= year]
    if not years:
        raise ValueError(f"no WGI {measure} estimates in or before {year}")
    return years[-1]


def stage_supply(
    refdata: ReferenceData, material: str, stage: str, year: int, *, measure: str = "mean", edition: str | None = None
) -> StageSupply | None:
    """HHI, top producer and HHI_WGI of a material's world production at a stage; None without country data."""
    wp = refdata.world_production(material, stage, year, edition)
    if wp is None:
        return None
    wgi_year = _wgi_year(refdata, measure, year)
    sc = supply_concentration(wp.shares(), wgi_scaled(refdata, measure, wgi_year))
    if sc is None:
        return None
    return StageSupply(
        material=material,
        stage=stage,
        year=year,
        edition=wp.edition,
        unit=wp.unit,
        wgi=measure,
        wgi_year=wgi_year,
        concentration=sc,
    )


def material_supply(
    refdata: ReferenceData,
    material: str,
    year: int | None = None,
    *,
    measure: str = "mean",
) -> list[StageSupply]:
    """Supply concentration at every stage USGS covers, in its latest year unless `year` is given."""
    out = []
    for stage in refdata.production_stages(material):
        years = refdata.production_years(material, stage)
        chosen = year if year is not None else (years[-1] if years else None)
        if chosen is not None and (s := stage_supply(refdata, material, stage, chosen, measure=measure)):
            out.append(s)
    return out


# --- validation against the EU 2023 study -------------------------------------------------------------


@dataclass(frozen=True)
class MaterialComparison:
    material: str
    sr: float  # the study's supply risk, 2023 assessment
    hhi_wgi: float  # ours, USGS shares, at the stage where it is highest (the study takes the riskier stage)
    stage: str
    top_producer: str
    top_share: float
    study_hhi_wgi: float | None  # the study's own global shares with the same WGI, riskier stage
    study_top_producer: str | None
    study_top_share: float | None
    eu_top_source: str | None  # the study's largest EU sourcing country, at its most concentrated stage
    eu_top_share: float | None
    rank_ours: float = 0.0
    rank_sr: float = 0.0


@dataclass(frozen=True)
class StudyComparison:
    year: int
    wgi: str
    assessment: int
    materials: tuple[MaterialComparison, ...]
    spearman: float | None  # ours vs SR
    spearman_study_shares: float | None  # HHI_WGI on the study's shares vs SR: the formula's own reach

    def largest_differences(self, n: int = 8) -> list[MaterialComparison]:
        return sorted(self.materials, key=lambda m: (-abs(m.rank_ours - m.rank_sr), m.material))[:n]


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing the mean of their positions (as Spearman's rho needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation: Pearson's r of the ranks; None for fewer than 3 pairs or a constant."""
    if len(xs) != len(ys):
        raise ValueError("spearman: the two series differ in length")
    if len(xs) < 3:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = math.fsum(rx) / len(rx), math.fsum(ry) / len(ry)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = math.fsum((a - mx) ** 2 for a in rx)
    syy = math.fsum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def compare_with_study(
    refdata: ReferenceData, year: int = 2021, *, measure: str = "mean", assessment: int = 2023
) -> StudyComparison:
    """Our HHI_WGI from USGS production against the study's SR, for every material both cover."""
    wgi_year = _wgi_year(refdata, measure, year)
    scaled = wgi_scaled(refdata, measure, wgi_year)
    rows = []
    for material in sorted({r["material"] for r in refdata.production}):
        score = refdata.study_score(material, assessment)
        if score is None or score["sr"] is None:
            continue
        ours = [s for stage in STAGES if (s := stage_supply(refdata, material, stage, year, measure=measure))]
        ours = [s for s in ours if s.concentration.hhi_wgi is not None]
        if not ours:
            continue
        best = max(ours, key=lambda s: s.concentration.hhi_wgi or 0.0)
        theirs = [
            sc
            for stage in STAGES
            if (sc := supply_concentration(refdata.study_supply_shares(material, stage), scaled))
            and sc.hhi_wgi is not None
        ]
        top_theirs = max(theirs, key=lambda sc: sc.hhi_wgi or 0.0) if theirs else None
        eu = [
            sc
            for stage in STAGES
            if (sc := supply_concentration(refdata.study_supply_shares(material, stage, scope="eu"), scaled))
        ]
        eu_top = max(eu, key=lambda sc: sc.hhi) if eu else None
        c = best.concentration
        rows.append(
            MaterialComparison(
                material=material,
                sr=score["sr"],
                hhi_wgi=c.hhi_wgi or 0.0,
                stage=best.stage,
                top_producer=c.top_producer,
                top_share=c.top_share,
                study_hhi_wgi=top_theirs.hhi_wgi if top_theirs else None,
                study_top_producer=top_theirs.top_producer if top_theirs else None,
                study_top_share=top_theirs.top_share if top_theirs else None,
                eu_top_source=eu_top.top_producer if eu_top else None,
                eu_top_share=eu_top.top_share if eu_top else None,
            )
        )
    ours_rank, sr_rank = ranks([r.hhi_wgi for r in rows]), ranks([r.sr for r in rows])
    rows = [
        MaterialComparison(**{**asdict(r), "rank_ours": a, "rank_sr": b})
        for r, a, b in zip(rows, ours_rank, sr_rank, strict=True)
    ]
    with_study = [r for r in rows if r.study_hhi_wgi is not None]
    return StudyComparison(
        year=year,
        wgi=measure,
        assessment=assessment,
        materials=tuple(rows),
        spearman=spearman([r.hhi_wgi for r in rows], [r.sr for r in rows]),
        spearman_study_shares=spearman([r.study_hhi_wgi or 0.0 for r in with_study], [r.sr for r in with_study]),
    )


def render_comparison(cmp: StudyComparison, top: int = 10) -> str:
    """The comparison as plain text: the correlations, then every material, largest rank differences first."""

    def fmt(x: float | None, spec: str = ".2f") -> str:
        return "-" if x is None else format(x, spec)

    lines = [
        f"HHI_WGI (USGS world production {cmp.year}, WGI {cmp.wgi}, EU 0..10 scale) against the EU CRM study's "
        f"SR ({cmp.assessment} assessment), {len(cmp.materials)} materials",
        f"Spearman rho, ours vs SR: {fmt(cmp.spearman, '.3f')}",
        f"Spearman rho, HHI_WGI on the study's own global shares vs SR: {fmt(cmp.spearman_study_shares, '.3f')}",
        "",
        f"{'material':<18}{'SR':>5}{'rank':>6}{'HHI_WGI':>9}{'rank':>6}{'diff':>6}  {'stage':<11}"
        f"{'top (USGS)':<14}{'study HHI_WGI':>14}  {'top (study)':<13}EU sourcing top",
    ]
    for r in cmp.largest_differences(len(cmp.materials)):
        top_ours = f"{r.top_producer} {r.top_share:.0%}"
        top_study = f"{r.study_top_producer} {r.study_top_share:.0%}" if r.study_top_producer else "-"
        eu_top = f"{r.eu_top_source} {r.eu_top_share:.0%}" if r.eu_top_source else "-"
        lines.append(
            f"{r.material:<18}{r.sr:>5.1f}{r.rank_sr:>6.1f}{r.hhi_wgi:>9.2f}{r.rank_ours:>6.1f}"
            f"{r.rank_ours - r.rank_sr:>+6.1f}  {r.stage:<11}{top_ours:<14}{fmt(r.study_hhi_wgi):>14}  "
            f"{top_study:<13}{eu_top}"
        )
    return "\n".join(lines) + "\n"
