"""Ingest throughput: reading and normalising the whole Pink Sheet, CSV prices, and publishing to Kafka.

Prints figures; asserts nothing. Publishing runs only when KAFKA_BOOTSTRAP_SERVERS is set.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Limits, normalise_price
from services.ingest.poll import open_ingestion, publish_document, read_records
from services.ingest.settings import IngestSettings
from shared.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]
PINKSHEET = ROOT.parent / "shared" / "data" / "worldbank-cmo-monthly" / "CMO-Historical-Data-Monthly.xlsx"


def csv_body(rows: int) -> bytes:
    # Distinct (series, day) per row, all in the past, so every row is a new valid observation.
    lines = ["date,material,price,currency,unit,series"]
    lines += [f"{(date(2000, 1, 1) + timedelta(days=i % 9000)).isoformat()},gallium,{200 + i % 100},USD,kg,"
              f"s{i // 9000}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def timed(label: str, count: int, started: float) -> None:
    took = time.perf_counter() - started
    print(f"{label:<48} {count:>8} records {took:8.3f} s {count / took:>12,.0f} records/s")


def main() -> None:
    catalog = load_catalog()
    limits = Limits(now=datetime.now(UTC))
    if PINKSHEET.exists():
        source = SourceConfig(name="bench-pinksheet", kind="pinksheet", path=PINKSHEET)
        body = PINKSHEET.read_bytes()
        started = time.perf_counter()
        records = list(read_records(body, source, catalog))
        timed("pinksheet read (openpyxl read_only)", len(records), started)
        started = time.perf_counter()
        for r in records:
            assert isinstance(r, Candidate)
            normalise_price(r, catalog, limits)
        timed("pinksheet normalise", len(records), started)
    source = SourceConfig(name="bench-csv", kind="csv_prices", path=Path("x.csv"), currency="USD", unit="kg")
    body = csv_body(50_000)
    started = time.perf_counter()
    records = list(read_records(body, source, catalog))
    timed("csv read", len(records), started)
    started = time.perf_counter()
    for r in records:
        normalise_price(r, catalog, limits, source.price_terms())
    timed("csv normalise", len(records), started)

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        print("publish: skipped (set KAFKA_BOOTSTRAP_SERVERS)")
        return

    async def publish() -> None:
        with tempfile.TemporaryDirectory() as state:
            settings = IngestSettings(kafka_bootstrap_servers=bootstrap, topic_namespace=f"bench{uuid.uuid4().hex[:8]}",
                                      ingest_state_dir=Path(state))
            async with open_ingestion(settings, classify=lambda *a, **k: None) as ingestion:
                small = csv_body(20_000)
                started = time.perf_counter()
                counts = await publish_document(small, source, ingestion)
                timed("csv publish to Kafka (first time)", counts["published"], started)
                started = time.perf_counter()
                counts = await publish_document(small, source, ingestion)
                timed("csv publish again (all duplicates)", counts["duplicate"], started)
                bad = ("date,material,price,currency,unit\n" + "2023-01-01,gallium,-1,USD,kg\n" * 5000).encode()
                started = time.perf_counter()
                counts = await publish_document(bad, source, ingestion)
                timed("csv rejected rows to the dead-letter topic", counts["rejected"], started)

    asyncio.run(publish())


if __name__ == "__main__":
    main()
