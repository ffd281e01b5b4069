"""Extra-EU import shares of one material in one period, from EU27 trade flows: what `mews trade shares` prints.

The flows come from a Comext file read exactly as ingest reads it (`services.ingest.sources.history`, wired in
services/cli.py), and the shares, HHI and top partner from the same functions the scoring engine uses.
"""

from __future__ import annotations

from typing import Any

from services.scoring.indicators.concentration import (
    herfindahl_hirschman,
    import_amounts,
    split_extra_eu,
    top_origin,
)
from shared.events import TradeFlowReported

UNITS = {"value": "EUR", "quantity": "kg"}


def import_shares_of(flows: list[TradeFlowReported], material: str, period: str) -> dict[str, Any] | None:
    """Extra-EU import shares of a material in a period (intra-EU imports beside them); None without imports."""
    imports = [f for f in flows if f.material == material and f.period == period and f.flow == "import"]
    if not imports:
        return None
    basis, amounts = import_amounts((f.partner, f.quantity_kg, f.value_eur) for f in imports)
    extra = split_extra_eu(amounts)
    top = top_origin(extra.shares)
    partners = dict(sorted(((c, s) for c, s in extra.shares.items() if s > 0), key=lambda cs: (-cs[1], cs[0])))
    return {
        "material": material,
        "period": period,
        "reporter": "EU27",
        "basis": basis,
        "unit": UNITS[basis],
        "extra_eu_total": extra.extra_eu_total,
        "intra_eu_total": extra.intra_eu_total,
        "partners": partners,
        "hhi": herfindahl_hirschman(partners),
        "top_partner": top[0] if top else None,
        "top_share": top[1] if top else None,
        "hs_codes": sorted({f.hs_code for f in imports}),
    }
