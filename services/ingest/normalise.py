"""Normalising one record of any kind, the same way for a feed and the push API, with what it needs to do so.

The poller (services/ingest/poll.py) and the API (services/ingest/api.py) both build an `Ingestion` and hand
their records to `normalise_candidate`, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from services.ingest.config import SourceConfig
from services.ingest.fetch import FetchLimits
from services.ingest.news import Classifier, normalise_news
from services.ingest.observation import (
    Candidate,
    Limits,
    MaterialCatalog,
    Outcome,
    normalise_leadtime,
    normalise_price,
    normalise_stock,
    normalise_trade,
)
from services.ingest.publish import Publisher
from services.ingest.seen import SeenStore


@dataclass
class Ingestion:
    """Everything a source run needs, built once at start-up."""

    publisher: Publisher
    seen: SeenStore
    catalog: MaterialCatalog
    classify: Classifier
    client: httpx.AsyncClient
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    future_tolerance: timedelta = timedelta(days=1)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def limits(self) -> Limits:
        return Limits(now=self.clock(), future_tolerance=self.future_tolerance)


def normalise_candidate(
    candidate: Candidate, ingestion: Ingestion, limits: Limits, source: SourceConfig | None = None
) -> Outcome:
    """The same normalisation for a feed record and an API item."""
    if candidate.kind == "price":
        return normalise_price(candidate, ingestion.catalog, limits, source.price_terms() if source else None)
    if candidate.kind == "news":
        return normalise_news(candidate, ingestion.classify, ingestion.catalog, limits)
    if candidate.kind == "trade":
        return normalise_trade(candidate, ingestion.catalog, limits)
    if candidate.kind == "leadtime":
        return normalise_leadtime(candidate, ingestion.catalog, limits)
    if candidate.kind == "stock":
        return normalise_stock(candidate, ingestion.catalog, limits)
    raise ValueError(f"unknown kind {candidate.kind!r}")
