"""The composite risk score (0..100) from normalised components and per-material weights."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

COMPONENTS = ("volatility", "price_trend", "leadtime", "concentration", "export_controls")


def clip01(x: float) -> float:
    """x limited to 0..1."""
    return min(1.0, max(0.0, x))


def normalise_components(
    ind: Mapping[str, float | None], *, volatility_ref: float, price_trend_ref_pct: float, leadtime_ratio_ref: float
) -> dict[str, float]:
    """Each available component on 0..1 (see docs/methodology.md); a component without data is absent."""
    out: dict[str, float] = {}
    # clip01 written out: this runs once per input.
    vol = ind.get("price_volatility")
    if vol is not None:
        out["volatility"] = min(1.0, max(0.0, vol / volatility_ref))
    change = ind.get("price_change_30d_pct")
    if change is not None:
        out["price_trend"] = min(1.0, max(0.0, change / price_trend_ref_pct))
    ratio = ind.get("leadtime_ratio")
    if ratio is not None:
        out["leadtime"] = min(1.0, max(0.0, (ratio - 1.0) / (leadtime_ratio_ref - 1.0)))
    gw = ind.get("governance_hhi")
    if gw is not None:
        reliance = ind.get("import_reliance")
        # Concentration matters in proportion to how much of the supply is imported (EU CRM methodology).
        out["concentration"] = min(1.0, max(0.0, gw / 10_000.0)) * (1.0 if reliance is None else reliance)
    severity = ind.get("export_control_severity")
    if severity is not None:
        out["export_controls"] = min(1.0, max(0.0, severity))
    return out


def composite_score(
    components: Mapping[str, float],
    weights: Mapping[str, float],
    min_coverage: float = 0.0,
    points: dict[str, float] | None = None,
) -> tuple[float | None, dict[str, float]]:
    """Weighted mean of the available components on 0..100, and each component's contribution in points.

    Weights are renormalised over the components that have data, so a material without trade data is
    scored on the rest; None when the components with data carry less than `min_coverage` of the total
    weight (a score from one lonely component would overstate what is known). `points`, when the caller keeps
    them, are `points_per_component` of these components.
    """
    if points is None:
        points = points_per_component(components, weights, min_coverage)
    if not points:
        return None, {}
    contributions = {k: f * components[k] for k, f in points.items()}
    return math.fsum(contributions.values()), contributions


def points_per_component(
    present: Iterable[str], weights: Mapping[str, float], min_coverage: float = 0.0
) -> dict[str, float]:
    """Score points per unit of each present component (100 w / the weight present); none below coverage.

    Depends only on which components are present, so a caller may keep it for a set of components.
    """
    used = {k: weights.get(k, 0.0) for k in present if weights.get(k, 0.0) > 0}
    total = math.fsum(used.values())
    everything = math.fsum(w for w in weights.values() if w > 0)
    if total <= 0 or total < min_coverage * everything:
        return {}
    return {k: 100.0 * w / total for k, w in used.items()}
