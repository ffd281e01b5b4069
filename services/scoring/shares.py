"""Extra-EU import shares of one material in one period, from a Comext file: what `mews trade shares` prints.

The file is read and normalised exactly as ingest reads it (member states' rows summed into EU27 flows), and
the shares, HHI and top partner come from the same functions the scoring engine uses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.ingest.config import SourceConfig
from services.ingest.observation import Accepted, Limits, Malformed, Rejected, normalise_trade
from services.ingest.sources.trade import read_comext
from services.scoring.indicators.concentration import (
    herfindahl_hirschman,
    import_amounts,
    split_extra_eu,
    top_origin,
)
from shared.catalog import load_catalog
from shared.events import TradeFlowReported

UNITS = {"value": "EUR", "quantity": "kg"}


@dataclass
class TradeFile:
    """The EU27 flows of a Comext file, and how many records could not be used, by reason."""

    flows: list[TradeFlowReported]
    unreadable: Counter[str]


def read_comext_file(path: Path) -> TradeFile:
    """EU27 trade flows from a Comext bulk file or extract, as ingest would publish them."""
    source = SourceConfig(name=f"comext:{path.name}"[:100], kind="comext", path=path, eu27_total=True)
    catalog = load_catalog()
    limits = Limits(now=datetime.now(UTC))  # only to refuse periods in the future, as ingest does
    flows: list[TradeFlowReported] = []
    unreadable: Counter[str] = Counter()
    for record in read_comext(path.read_bytes(), source):
        if isinstance(record, Malformed):
            unreadable[record.code] += 1
            continue
        outcome = normalise_trade(record, catalog, limits)
        if isinstance(outcome, Accepted):
            flows.extend(e for e in outcome.events if isinstance(e, TradeFlowReported) and e.reporter == "EU27")
        elif isinstance(outcome, Rejected):
            unreadable[outcome.code] += 1
    return TradeFile(flows, unreadable)


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
        "material": material, "period": period, "reporter": "EU27", "basis": basis, "unit": UNITS[basis],
        "extra_eu_total": extra.extra_eu_total, "intra_eu_total": extra.intra_eu_total,
        "partners": partners, "hhi": herfindahl_hirschman(partners),
        "top_partner": top[0] if top else None, "top_share": top[1] if top else None,
        "hs_codes": sorted({f.hs_code for f in imports}),
    }
