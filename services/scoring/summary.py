"""A breach transition in one plain-language line, and indicator values as a reader expects them."""

from __future__ import annotations

import math
from functools import cache

from services.scoring.config import INDICATORS
from services.scoring.rules import Rule, Transition
from services.scoring.state import _dt
from shared.catalog import load_catalog


def material_name(material: str) -> str:
    """A material's display name as a sentence starts with it: the catalog's ("rare-earths-heavy" -> "Heavy rare
    earths"); an id the catalog does not hold reads as its words ("new-metal" -> "New metal")."""
    name = _display_names().get(material) or material.replace("-", " ")
    return name[:1].upper() + name[1:]


@cache
def _display_names() -> dict[str, str]:
    return {m.id: m.display_name() for m in load_catalog().materials}


def format_value(indicator: str, value: float | None) -> str:
    """An indicator value as a reader expects it (percent, ratio, days, index points)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    unit = INDICATORS.get(indicator, ("", "days" if indicator.startswith("leadtime_days.") else "number"))[1]
    if unit == "pct":
        return f"{value:+.0f}%"
    if unit == "fraction":
        return f"{value * 100:.0f}%"
    if unit == "ratio":
        return f"{value:.2f}x"
    if unit == "days":
        return f"{value:.0f} days"
    if unit == "tonnes":
        return f"{value:,.1f} t"
    if unit == "days_per_30d":
        return f"{value:+.1f} days per 30 days"
    if unit == "z":
        return f"{value:+.1f} sd"
    if unit in ("index", "score", "count"):
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _label(indicator: str) -> str:
    if indicator.startswith("leadtime_days."):
        return f"quoted lead time from {indicator.split('.', 1)[1]}"
    return INDICATORS.get(indicator, (indicator, ""))[0]


def summarise(
    material: str,
    rule: Rule | None,
    indicator: str,
    tr: Transition,
    value: float,
    rule_name: str,
    input_at: float | None = None,
) -> str:
    """The one-line, plain-language account of a breach transition; a resolution is dated by its input."""
    name = material_name(material)
    label = _label(indicator)
    v = format_value(indicator, value)
    since = _dt(tr.starts_at).date().isoformat()
    if rule is None:
        return f"{name}: rule {rule_name} no longer applies ({tr.reason}); breach resolved (since {since})"
    direction = rule.direction
    back = "below" if direction == "above" else "above"
    if tr.kind == "resolved":
        # A late input resolves as of its own time, not the watermark's (newer inputs of other kinds).
        ended = _dt(input_at if input_at is not None else tr.ends_at or tr.starts_at).date().isoformat()
        return (
            f"{name}: {label} {v} is back {back} the clear threshold of {format_value(indicator, rule.clear)}; "
            f"resolved on {ended} (breach since {since})"
        )
    if tr.kind == "deescalated":
        return (
            f"{name}: {label} {v} fell back {back} the critical threshold but is still {direction} the warning "
            f"threshold of {format_value(indicator, tr.threshold)} (since {since})"
        )
    return (
        f"{name}: {label} {v} is {direction} the {tr.severity} threshold of "
        f"{format_value(indicator, tr.threshold)} (since {since})"
    )
