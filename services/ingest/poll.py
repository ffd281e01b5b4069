"""Running the declared sources: fetch (conditionally), read, normalise, publish; on a schedule or once.

A source's validators (ETag, Last-Modified) are stored only after everything fetched with them has been
published, so a Kafka failure means the next poll fetches the document again instead of losing it. Sources
run concurrently, at most `POLL_CONCURRENCY` at once, so a slow or hanging source never delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from services.ingest import metrics
from services.ingest.config import SourceConfig, SourcesConfig
from services.ingest.fetch import Fetched, FetchError, FetchLimits, Validators, fetch_file, fetch_url
from services.ingest.news import Classifier
from services.ingest.normalise import Ingestion, normalise_candidate
from services.ingest.observation import (
    Limits,
    Malformed,
    MaterialCatalog,
    Record,
    RememberedNames,
)
from services.ingest.publish import Item, Publisher
from services.ingest.seen import SeenStore
from services.ingest.settings import IngestSettings
from services.ingest.sources import feeds, leadtimes, pinksheet, prices, trade
from shared import topics
from shared.events import SIGNALS
from shared.kafka import EventProducer, ensure_topics
from shared.outbound import OutboundPolicy, pinned_transport

log = logging.getLogger(__name__)

READERS = {
    "json_prices": prices.read_json_prices,
    "csv_prices": prices.read_csv_prices,
    "pinksheet": pinksheet.read_pinksheet,
    "feed": feeds.read_feed,
    "comext": trade.read_comext,
    "comtrade": trade.read_comtrade,
    "leadtimes": leadtimes.read_leadtimes,
}
PUBLISH_CHUNK = 1000
POLL_CONCURRENCY = 8  # sources fetched and read at once; each fetch ends within its own timeout
MAX_DEAD_DOCUMENT = 100_000  # bytes of an unreadable document kept in its dead letter


@dataclass
class SourceHealth:
    """How a source has been doing; served by the API and logged by the poller."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str = ""
    consecutive_failures: int = 0
    last_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceReport:
    """The result of one run of one source."""

    source: str
    outcome: str  # ok, not_modified, error
    counts: dict[str, int]
    error: str = ""


def read_records(body: bytes, source: SourceConfig, catalog: MaterialCatalog) -> Iterator[Record]:
    """The records in a fetched document, by the source's kind."""
    if source.kind == "pinksheet":
        # Only default series the catalog knows; others would dead-letter every month of history.
        return pinksheet.read_pinksheet(body, source, catalog)
    return READERS[source.kind](body, source)


def read_document(body: bytes, source: SourceConfig, catalog: MaterialCatalog) -> list[Record]:
    """Every record of a document; a reader failing part-way (nesting too deep, a number too long, a bug)
    keeps what it read and ends the list with a `Malformed` saying why, so the document is dead-lettered."""
    records: list[Record] = []
    try:
        records.extend(read_records(body, source, catalog))
    except Exception as exc:  # RecursionError and ValueError from the parsers included: hostile input
        log.warning("document unreadable", extra={"source": source.name, "error": type(exc).__name__})
        records.append(
            Malformed("unreadable", f"document unreadable: {type(exc).__name__}: {exc}"[:500], body[:MAX_DEAD_DOCUMENT])
        )
    return records


def normalise_record(record: Record, source: SourceConfig, ingestion: Ingestion, limits: Limits) -> Item:
    """One record's outcome, by kind, wrapped for the publisher."""
    kind = source.event_kind
    if isinstance(record, Malformed):
        return Item(kind, source.name, record, record.raw)
    return Item(kind, source.name, normalise_candidate(record, ingestion, limits, source), record.raw)


async def fetch_source(source: SourceConfig, ingestion: Ingestion, *, conditional: bool = True) -> Fetched:
    """The source's current document (or not-modified), by URL or configured path."""
    previous = ingestion.seen.validators(source.name) if conditional else Validators()
    if source.url:
        return await fetch_url(ingestion.client, source.url, previous, ingestion.fetch_limits)
    assert source.path is not None
    return await asyncio.to_thread(fetch_file, source.path, previous, ingestion.fetch_limits)


async def publish_document(
    body: bytes, source: SourceConfig, ingestion: Ingestion, progress: Callable[[int], None] | None = None
) -> Counter[str]:
    """Read, normalise and publish one fetched document; return counts by decision."""
    limits = ingestion.limits()
    records = await asyncio.to_thread(read_document, body, source, ingestion.catalog)
    counts: Counter[str] = Counter()
    for start in range(0, len(records), PUBLISH_CHUNK):
        chunk = records[start : start + PUBLISH_CHUNK]
        items = [normalise_record(r, source, ingestion, limits) for r in chunk]
        for decision in await ingestion.publisher.publish(items):
            counts[decision.status] += 1
        if progress is not None:
            progress(len(chunk))
    return counts


async def run_source(
    source: SourceConfig,
    ingestion: Ingestion,
    health: SourceHealth | None = None,
    *,
    conditional: bool = True,
    progress: Callable[[int], None] | None = None,
) -> SourceReport:
    """Fetch one source and publish what it holds; failures are reported, never raised."""
    health = health if health is not None else SourceHealth()
    health.last_attempt = time.time()
    kind = source.event_kind
    try:
        fetched = await fetch_source(source, ingestion, conditional=conditional)
    except FetchError as exc:
        metrics.FETCHES.labels(source.name, "error").inc()
        metrics.FETCH_ERRORS.labels(source.name, exc.code).inc()
        if exc.hostile:
            await ingestion.publisher.dead_letter_document(
                exc.body or source.location.encode(), kind, source.name, exc.code, exc.detail
            )
        return _failed(source, health, f"{exc.code}: {exc.detail}")
    if fetched.not_modified:
        metrics.FETCHES.labels(source.name, "not_modified").inc()
        _succeeded(source, health, {})
        return SourceReport(source.name, "not_modified", {})
    assert fetched.body is not None
    try:
        counts = await publish_document(fetched.body, source, ingestion, progress)
    except Exception as exc:  # Kafka or a reader bug: report it, keep the old validators, try again next time
        log.exception("source publish failed", extra={"source": source.name})
        metrics.FETCHES.labels(source.name, "error").inc()
        metrics.FETCH_ERRORS.labels(source.name, "publish").inc()
        return _failed(source, health, f"publish: {type(exc).__name__}: {exc}")
    ingestion.seen.set_validators(source.name, fetched.validators)
    metrics.FETCHES.labels(source.name, "ok").inc()
    _succeeded(source, health, dict(counts))
    log.info("source ingested", extra={"source": source.name, "counts": dict(counts)})
    return SourceReport(source.name, "ok", dict(counts))


def _succeeded(source: SourceConfig, health: SourceHealth, counts: dict[str, int]) -> None:
    health.last_success = time.time()
    health.consecutive_failures = 0
    health.last_error = ""
    health.last_counts = counts
    metrics.LAST_SUCCESS.labels(source.name).set(health.last_success)
    metrics.CONSECUTIVE_FAILURES.labels(source.name).set(0)


def _failed(source: SourceConfig, health: SourceHealth, reason: str) -> SourceReport:
    health.consecutive_failures += 1
    health.last_error = reason
    metrics.CONSECUTIVE_FAILURES.labels(source.name).set(health.consecutive_failures)
    log.warning(
        "source failed",
        extra={"source": source.name, "reason": reason, "consecutive_failures": health.consecutive_failures},
    )
    return SourceReport(source.name, "error", {}, reason)


async def poll_once(
    config: SourcesConfig,
    ingestion: Ingestion,
    health: dict[str, SourceHealth] | None = None,
    *,
    concurrency: int = POLL_CONCURRENCY,
) -> list[SourceReport]:
    """Run every source once, `concurrency` at a time; the reports come in the order of the sources."""
    health = health if health is not None else {}
    slots = asyncio.Semaphore(concurrency)

    async def run(source: SourceConfig) -> SourceReport:
        async with slots:
            return await run_source(source, ingestion, health.setdefault(source.name, SourceHealth()))

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run(s), name=f"source:{s.name}") for s in config.sources]
    return [t.result() for t in tasks]


async def poll_forever(
    config: SourcesConfig,
    ingestion: Ingestion,
    health: dict[str, SourceHealth],
    stop: asyncio.Event,
    *,
    concurrency: int = POLL_CONCURRENCY,
) -> None:
    """Run each source at its interval until `stop` is set; a failing source backs off, up to its interval x8.

    Each source keeps its own schedule, `concurrency` of them fetching at once: a slow one delays none of the
    others beyond waiting for a free slot.
    """
    slots = asyncio.Semaphore(concurrency)

    async def keep_polling(source: SourceConfig) -> None:
        while not stop.is_set():
            async with slots:
                report = await run_source(source, ingestion, health.setdefault(source.name, SourceHealth()))
            failures = health[source.name].consecutive_failures if report.outcome == "error" else 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=source.interval * min(8, 2**failures))

    async with asyncio.TaskGroup() as group:
        for source in config.sources:
            group.create_task(keep_polling(source), name=f"source:{source.name}")


@contextlib.asynccontextmanager
async def open_ingestion(
    settings: IngestSettings, *, catalog: MaterialCatalog | None = None, classify: Classifier | None = None
) -> AsyncIterator[Ingestion]:
    """The ingestion path with its producer, seen-keys store and HTTP client started; all closed on exit."""
    if catalog is None:
        from shared.catalog import load_catalog

        catalog = load_catalog()
    if classify is None:
        from services.ingest.classify import classify_item

        classify = classify_item
    await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_namespace)
    producer = EventProducer(settings.kafka_bootstrap_servers, source="mews/ingest", namespace=settings.topic_namespace)
    await producer.start([*(s.topic for s in SIGNALS.values()), topics.DEADLETTER])
    seen = SeenStore(settings.seen_store_path)
    # Every connection, each redirect hop included, goes only to addresses the outbound policy allows.
    transport = pinned_transport(OutboundPolicy(settings.allow_private_sources))
    client = httpx.AsyncClient(follow_redirects=False, transport=transport)
    try:
        yield Ingestion(
            publisher=Publisher(producer, seen, within=settings.request_deadline_s),
            seen=seen,
            catalog=RememberedNames(catalog),
            classify=classify,
            client=client,
            future_tolerance=timedelta(seconds=settings.future_tolerance_s),
            fetch_limits=FetchLimits(
                settings.fetch_max_bytes,
                settings.fetch_timeout_s,
                settings.fetch_retries,
                settings.fetch_backoff_s,
                settings.max_redirects,
            ),
        )
    finally:
        await client.aclose()
        await producer.stop()
        seen.close()
