"""What the ops desk reads from the other services: scoring's risk ranking with each component's contribution and
each material's recent snapshots, and ingest's feed freshness.

Both are read over HTTP with the operator's keys, concurrently and within a short timeout, on the event loop (an
async client, never a blocking call). An answer that is missing, late, refused or of the wrong shape becomes a
`problem` the page shows in place of the section: the desk never fails because another service is away.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)
UPSTREAM_READS = Counter(
    "mews_notify_console_upstream_reads_total",
    "Reads of the scoring and ingest APIs by the ops desk, by service and outcome",
    ["service", "outcome"],
)
T = TypeVar("T")


class RiskRow(BaseModel):
    """A row of scoring's `GET /v1/risk`."""

    model_config = ConfigDict(extra="ignore")
    rank: int
    material: str
    risk_score: float | None
    components: dict[str, float]
    as_of: datetime
    withheld: bool = False


class HistoryPoint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    as_of: datetime
    risk_score: float | None
    indicators: dict[str, float | None]


class MaterialHistory(BaseModel):
    """A material of scoring's `GET /v1/history`."""

    model_config = ConfigDict(extra="ignore")
    material: str
    points: list[HistoryPoint]


class SourceHealth(BaseModel):
    """A source of ingest's `GET /v1/sources` (times in seconds since the epoch)."""

    model_config = ConfigDict(extra="ignore")
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str = ""
    consecutive_failures: int = 0


_RISK = TypeAdapter(list[RiskRow])
_HISTORY = TypeAdapter(list[MaterialHistory])
_SOURCES = TypeAdapter(dict[str, SourceHealth])


@dataclass(frozen=True)
class Upstream(Generic[T]):
    """One answer of another service: its validated data, or the problem (a word key) and its detail."""

    data: T | None = None
    problem: str = ""
    detail: str = ""


@dataclass(frozen=True)
class DeskReadings:
    risk: Upstream[list[RiskRow]]
    history: Upstream[list[MaterialHistory]]
    sources: Upstream[dict[str, SourceHealth]]


async def _read(
    client: httpx.AsyncClient, service: str, base_url: str, key: str, path: str, shape: TypeAdapter[T], seconds: float
) -> Upstream[T]:
    if not base_url:
        UPSTREAM_READS.labels(service, "unset").inc()
        return Upstream(problem="upstream_unset")
    url = base_url.rstrip("/") + path
    try:
        async with asyncio.timeout(seconds):  # the whole read, not each phase of it
            response = await client.get(url, headers={"authorization": f"Bearer {key}"} if key else {})
    except (httpx.HTTPError, TimeoutError) as exc:
        UPSTREAM_READS.labels(service, "unreachable").inc()
        log.warning(
            "ops desk could not reach a service", extra={"service": service, "url": url, "reason": type(exc).__name__}
        )
        return Upstream(problem="upstream_unreachable", detail=type(exc).__name__)
    if response.status_code != 200:
        refused = response.status_code in (401, 403)  # the key, not the service, is what to look at
        UPSTREAM_READS.labels(service, "refused" if refused else "failed").inc()
        log.warning(
            "ops desk read refused", extra={"service": service, "url": url, "status_code": response.status_code}
        )
        return Upstream(
            problem="upstream_refused" if refused else "upstream_failed", detail=f"HTTP {response.status_code}"
        )
    try:
        data = shape.validate_json(response.content)
    except ValidationError as exc:
        UPSTREAM_READS.labels(service, "invalid").inc()
        log.warning(
            "ops desk read an answer of the wrong shape",
            extra={"service": service, "url": url, "errors": exc.error_count()},
        )
        first = exc.errors(include_input=False, include_url=False)[0]  # where and what, never the value itself
        where = ".".join(str(p) for p in first["loc"])
        return Upstream(problem="upstream_invalid", detail=f"{where}: {first['msg']}" if where else first["msg"])
    UPSTREAM_READS.labels(service, "ok").inc()
    return Upstream(data)


@functools.cache
def _tls() -> ssl.SSLContext:
    # Built once: loading the system's certificates for every page view would cost more than the reads.
    return ssl.create_default_context()


async def read_desk(settings: NotifySettings) -> DeskReadings:
    """Scoring's ranking and history and ingest's sources, read at once; never raises for an absent service."""
    scoring, scoring_key = settings.console_scoring_url, settings.console_scoring_key.get_secret_value()
    ingest, ingest_key = settings.console_ingest_url, settings.console_ingest_key.get_secret_value()
    timeout = settings.console_upstream_timeout_seconds
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls()) as client:
        risk, history, sources = await asyncio.gather(
            _read(client, "scoring", scoring, scoring_key, "/v1/risk", _RISK, timeout),
            _read(client, "scoring", scoring, scoring_key, "/v1/history", _HISTORY, timeout),
            _read(client, "ingest", ingest, ingest_key, "/v1/sources", _SOURCES, timeout),
        )
    return DeskReadings(risk, history, sources)


def indicator_series(history: list[HistoryPoint]) -> dict[str, list[tuple[datetime, float]]]:
    """Each indicator's values over the points, and the risk score's under `risk_score`; None values left out."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    for point in history:
        values: dict[str, Any] = {"risk_score": point.risk_score, **point.indicators}
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                series.setdefault(name, []).append((point.as_of, float(value)))
    return series
