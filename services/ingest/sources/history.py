"""Historical files read and normalised exactly as ingest would publish them: the events, and what it would refuse.

`mews backtest` replays the World Bank Pink Sheet through these and `mews trade` reads Comext files, so an
analysis sees the very events the poller would have published, under the same ids, and counts by reason
the records the poller would dead-letter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from services.ingest.config import SourceConfig
from services.ingest.observation import Accepted, Limits, Malformed, Rejected, normalise_price, normalise_trade
from services.ingest.sources.trade import read_comext
from shared.catalog import load_catalog
from shared.events import PriceObserved, SignalEvent, TradeFlowReported

PINKSHEET_SOURCE = "worldbank-pinksheet"
PINKSHEET_URL = "https://www.worldbank.org/en/research/commodity-markets"
E = TypeVar("E", bound=SignalEvent)


@dataclass
class FileEvents(Generic[E]):
    """The events of a file, and how many of its records could not be used, by reason."""

    events: list[E] = field(default_factory=list)
    unreadable: Counter[str] = field(default_factory=Counter)


def _limits() -> Limits:
    # History is checked against today only to refuse what is dated in the future, as ingest would.
    return Limits(now=datetime.now(UTC))


def read_pinksheet_file(path: Path, series: dict[str, str] | None = None) -> FileEvents[PriceObserved]:
    """Monthly prices from the World Bank Pink Sheet workbook, as the poller would publish them.

    `series` maps workbook codes to material names (default: the metals the catalog knows).
    """
    from services.ingest.sources import pinksheet  # only the workbook needs openpyxl

    source = SourceConfig(name=PINKSHEET_SOURCE, kind="pinksheet", path=path, series=series or {})
    terms = replace(source.price_terms(), url=PINKSHEET_URL)
    catalog = load_catalog()
    limits = _limits()
    read: FileEvents[PriceObserved] = FileEvents()
    for record in pinksheet.read_pinksheet(path.read_bytes(), source, catalog):
        if isinstance(record, Malformed):
            read.unreadable[f"pinksheet: {record.detail[:120]}"] += 1
            continue
        outcome = normalise_price(record, catalog, limits, terms)
        if isinstance(outcome, Accepted):
            read.events.extend(e for e in outcome.events if isinstance(e, PriceObserved))
        else:
            read.unreadable[f"pinksheet {record.fields.get('series')}: {outcome.code}"] += 1
    return read


def read_comext_file(path: Path) -> FileEvents[TradeFlowReported]:
    """The EU27 trade flows of a Comext bulk file or extract (member states summed), as ingest would publish them."""
    source = SourceConfig(name=f"comext:{path.name}"[:100], kind="comext", path=path, eu27_total=True)
    catalog = load_catalog()
    limits = _limits()
    read: FileEvents[TradeFlowReported] = FileEvents()
    for record in read_comext(path.read_bytes(), source):
        if isinstance(record, Malformed):
            read.unreadable[record.code] += 1
            continue
        outcome = normalise_trade(record, catalog, limits)
        if isinstance(outcome, Accepted):
            read.events.extend(e for e in outcome.events if isinstance(e, TradeFlowReported) and e.reporter == "EU27")
        elif isinstance(outcome, Rejected):
            read.unreadable[outcome.code] += 1
    return read
