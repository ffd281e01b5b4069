"""Ingest throughput: reading and normalising feeds, publishing them, and the push API against a bare producer.

Prints figures; asserts nothing. Publishing runs on the broker at KAFKA_BOOTSTRAP_SERVERS, or else on one the
bench starts for itself; the bench deletes the topics it created.

The push API section serves `mews ingest api` in its own process and posts batches of prices over HTTP, one
request after another, as a client would; it times the first request to the last answer. In the same run a bare
aiokafka producer, with the settings `EventProducer` uses, sends the very bytes the API published (read back
from its topic) with the same keys, one batch per request, waiting for each batch's acknowledgements as the API
does: that is the floor, and the ratio API / bare is printed. Each side first sends one untimed batch of other
prices (the API as a request), so neither pays its first connections and fresh partitions on the clock. Ingest
builds its record batches itself (aiokafka's batch API), so the same bytes also go through that API bare, for a
second ratio. A concurrent /healthz probe reports how long the API's event loop was held; CPU seconds per 1,000
items are the steadier figure on a shared machine. With `--against REV` the same workload first runs on the code
of an earlier commit (extracted with `git archive` into a temporary folder, in a fresh interpreter), then on the
working tree.
`--warm-up K` push runs of the working tree come first and are not counted: a fresh broker is slow at first.

Run: .venv/bin/python bench/ingest_bench.py [--sections read,publish,push] [--items 20000] [--batch 1000]
     [--runs 3] [--warm-up 1] [--against 3389b4b]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness.broker import kafka_broker  # noqa: E402
from bench.harness.trees import extract  # noqa: E402

PINKSHEET = ROOT.parent / "shared" / "data" / "worldbank-cmo-monthly" / "CMO-Historical-Data-Monthly.xlsx"
API_KEY = "bench-ingest-key"
# The settings of shared.kafka.EventProducer (max_batch_size: its MAX_BATCH_BYTES), so the floor pays what ingest's
# producer pays. Written out: with --against, an earlier tree's shared package must be the one this process loads.
BARE_PRODUCER = {"acks": "all", "enable_idempotence": True, "linger_ms": 5, "max_batch_size": 512 * 1024}
WARM_UP_SOURCE = "bench-warm-up"  # the source of the untimed first batch, found again in the events it became


def csv_body(rows: int) -> bytes:
    # Distinct (series, day) per row, all in the past, so every row is a new valid observation.
    lines = ["date,material,price,currency,unit,series"]
    lines += [
        f"{(date(2000, 1, 1) + timedelta(days=i % 9000)).isoformat()},gallium,{200 + i % 100},USD,kg,s{i // 9000}"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def timed(label: str, count: int, started: float) -> None:
    took = time.perf_counter() - started
    print(f"{label:<48} {count:>8} records {took:8.3f} s {count / took:>12,.0f} records/s")


def measure_reading() -> None:
    from services.ingest.config import SourceConfig
    from services.ingest.observation import Candidate, Limits, normalise_price
    from services.ingest.poll import read_records
    from shared.catalog import load_catalog

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


def measure_feed_publish(bootstrap: str) -> None:
    from services.ingest.config import SourceConfig
    from services.ingest.poll import open_ingestion, publish_document
    from services.ingest.settings import IngestSettings

    source = SourceConfig(name="bench-csv", kind="csv_prices", path=Path("x.csv"), currency="USD", unit="kg")

    async def publish() -> None:
        with tempfile.TemporaryDirectory() as state:
            settings = IngestSettings(
                kafka_bootstrap_servers=bootstrap, topic_namespace=f"bench{uuid.uuid4().hex[:8]}", state_dir=Path(state)
            )
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
            await delete_namespaces(bootstrap, [settings.topic_namespace])

    asyncio.run(publish())


# --- push API against a bare producer: runs in a fresh interpreter with the measured tree on sys.path ---


def price_batches(
    items: int, batch: int, *, source: str = "bench", start: datetime = datetime(2001, 1, 1, tzinfo=UTC)
) -> list[bytes]:
    """Request bodies of distinct, valid prices over the catalog's materials, daily from `start`."""
    from shared.catalog import load_catalog

    materials = sorted(m.id for m in load_catalog().materials)[:50]
    prices = [
        {
            "material": materials[i % len(materials)],
            "price": 100 + (i % 977) / 10,
            "currency": "USD",
            "unit": "kg",
            "observed_at": (start + timedelta(days=i // len(materials))).isoformat(),
            "source": source,
        }
        for i in range(items)
    ]
    return [json.dumps({"items": prices[i : i + batch]}).encode() for i in range(0, items, batch)]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(root: Path, bootstrap: str, namespace: str, state: str, batch: int) -> tuple[subprocess.Popen, str]:
    """`mews ingest api` of the tree at `root`, started in its own process; returns it and its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MEWS_TOPIC_NAMESPACE": namespace,
        "MEWS_INGEST_STATE_DIR": state,
        "MEWS_INGEST_PORT": str(port),
        "MEWS_INGEST_API_KEYS": f"{hashlib.sha256(API_KEY.encode()).hexdigest()}:ingest",
        "MEWS_INGEST_MAX_BATCH": str(max(batch, 1000)),
        "MEWS_INGEST_MAX_BODY_BYTES": str(200 * batch + 10_000),
        "MEWS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "ingest", "api"], env=env, cwd=root)
    return process, f"http://127.0.0.1:{port}"


async def _wait_ready(process: subprocess.Popen, base: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                # uvicorn listens only once the lifespan (topics, producer) is up: /healthz means ready, and
                # unlike /readyz it asks the broker nothing.
                if (await client.get(base + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError("the ingest API exited during start-up")
            await asyncio.sleep(0.1)
    process.terminate()
    raise RuntimeError("the ingest API did not become ready within 30 s")


async def _read_back(bootstrap: str, topic: str, expect: int) -> list[tuple[bytes, bytes]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=50_000_000,
    )
    await consumer.start()
    try:
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 60
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        await consumer.stop()


async def _probe(base: str, stop: asyncio.Event) -> float:
    """The longest /healthz round trip while the batches are posted: how long the API's loop was held."""
    import httpx

    longest = 0.0
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            await client.get(base + "/healthz")
            longest = max(longest, time.perf_counter() - t0)
            await asyncio.sleep(0.05)  # gently: the probe must not be what loads the API
    return longest


async def _bare_rate(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], batch: int, warm_up: list[tuple[bytes, bytes]]
) -> tuple[float, float]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **BARE_PRODUCER)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value, key=key) for key, value in warm_up])
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(messages), batch):
            futures = [await producer.send(topic, value, key=key) for key, value in messages[i : i + batch]]
            await asyncio.gather(*futures)
        return len(messages) / (time.perf_counter() - started), time.process_time() - cpu
    finally:
        await producer.stop()


async def _bare_batch_rate(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], batch: int, warm_up: list[tuple[bytes, bytes]]
) -> float:
    """The same bytes through aiokafka's batch API (record batches built by hand), the path ingest now takes."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import murmur2

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **BARE_PRODUCER)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        await asyncio.gather(*[await producer.send(topic, value, key=key) for key, value in warm_up])
        started = time.perf_counter()
        for i in range(0, len(messages), batch):
            open_batches: dict[int, object] = {}
            futures = []
            for key, value in messages[i : i + batch]:
                partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
                builder = open_batches.get(partition)
                if builder is None or builder.append(key=key, value=value, timestamp=None) is None:
                    if builder is not None:
                        futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = open_batches[partition] = producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
            for partition, builder in open_batches.items():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
            await asyncio.gather(*futures)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def measure_push_once(root: Path, bootstrap: str, items: int, batch: int) -> dict:
    import httpx

    from shared import topics
    from shared.kafka import ensure_topics

    namespace, floor_namespace = f"bench{uuid.uuid4().hex[:8]}", f"bench{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, namespace)
    await ensure_topics(bootstrap, floor_namespace, [topics.PRICES])
    batch_namespace = f"bench{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, batch_namespace, [topics.PRICES])
    bodies = price_batches(items, batch)
    # One batch of other prices, posted before the clock starts as the bare producers send it before theirs: the
    # first request to fresh topics waits for their partitions' leaders and connections (300-400 ms, about 6 ms
    # per request of a run of 60), which the bare producers, starting long after the topics were made, never pay.
    (warm_up_body,) = price_batches(batch, batch, source=WARM_UP_SOURCE, start=datetime(1971, 1, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as state:
        process, base = _serve(root, bootstrap, namespace, state, batch)
        try:
            await _wait_ready(process, base)
            headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
            stop = asyncio.Event()
            async with httpx.AsyncClient(timeout=120) as client:

                async def post(body: bytes) -> None:
                    response = await client.post(base + "/v1/prices", content=body, headers=headers)
                    answer = response.json()
                    if (
                        response.status_code != 202
                        or answer["rejected"]
                        or any(r["duplicate"] for r in answer["items"])
                    ):
                        raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:300]}")

                warm_up_started = time.perf_counter()
                await post(warm_up_body)
                warm_up_s = time.perf_counter() - warm_up_started
                probe = asyncio.create_task(_probe(base, stop))
                started, cpu = time.perf_counter(), process_cpu_s(process.pid)
                for body in bodies:
                    await post(body)
                api_s, api_cpu = time.perf_counter() - started, process_cpu_s(process.pid) - cpu
                stop.set()
                longest_probe = await probe
        finally:
            process.terminate()
            process.wait(30)
    read = await _read_back(bootstrap, topics.PRICES.qualified(namespace), items + batch)
    warm_up = [m for m in read if WARM_UP_SOURCE.encode() in m[1]]
    published = [m for m in read if WARM_UP_SOURCE.encode() not in m[1]]
    if len(warm_up) != batch or len(published) != items:
        raise RuntimeError(f"read back {len(warm_up)} warm-up and {len(published)} timed events")
    bare, bare_cpu = await _bare_rate(bootstrap, topics.PRICES.qualified(floor_namespace), published, batch, warm_up)
    bare_batch = await _bare_batch_rate(bootstrap, topics.PRICES.qualified(batch_namespace), published, batch, warm_up)
    await delete_namespaces(bootstrap, [namespace, floor_namespace, batch_namespace])
    return {
        "api": items / api_s,
        "bare": bare,
        "bare_batch": bare_batch,
        "published": len(published),
        "warm_up_ms": warm_up_s * 1000,
        "probe_max_s": longest_probe,
        "api_cpu_ms_per_1000": api_cpu / items * 1e6,
        "bare_cpu_ms_per_1000": bare_cpu / items * 1e6,
    }


async def delete_namespaces(bootstrap: str, namespaces: list[str]) -> None:
    """Delete the bench's topics again: a shared broker must not collect them run after run."""
    from aiokafka.admin import AIOKafkaAdminClient

    from shared import topics

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t.qualified(ns) for ns in namespaces for t in topics.ALL if t.qualified(ns) in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def measure_push(root: Path, bootstrap: str, items: int, batch: int, runs: int) -> dict:
    results = [asyncio.run(measure_push_once(root, bootstrap, items, batch)) for _ in range(runs)]
    return {key: [r[key] for r in results] for key in results[0]}


def run_tree(root: Path, bootstrap: str, items: int, batch: int, runs: int) -> dict:
    """The push figures of the code tree at `root`, measured in a fresh interpreter."""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--json",
            "--root",
            str(root),
            "--items",
            str(items),
            "--batch",
            str(batch),
            "--runs",
            str(runs),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
    )
    return json.loads(out.stdout.splitlines()[-1])


def describe(label: str, m: dict, items: int, batch: int) -> str:
    ratios = [a / b for a, b in zip(m["api"], m["bare"], strict=True)]
    return (
        f"{label}: push API {statistics.median(m['api']):,.0f} items/s, bare aiokafka producer "
        f"{statistics.median(m['bare']):,.0f} items/s, ratio {statistics.median(ratios):.2f} (medians of "
        f"{len(ratios)} runs of {items:,} prices in batches of {batch:,}; per run API "
        f"{', '.join(f'{v:,.0f}' for v in m['api'])}, bare {', '.join(f'{v:,.0f}' for v in m['bare'])}, ratio "
        f"{', '.join(f'{v:.2f}' for v in ratios)}); published {', '.join(map(str, m['published']))}; untimed "
        f"warm-up batch {', '.join(f'{v:.0f}' for v in m['warm_up_ms'])} ms; longest "
        f"/healthz round trip while posting {max(m['probe_max_s']) * 1000:.0f} ms; CPU per 1,000 items: API "
        f"process {statistics.median(m['api_cpu_ms_per_1000']):.0f} ms, bare producer "
        f"{statistics.median(m['bare_cpu_ms_per_1000']):.0f} ms; the same bytes through aiokafka's batch API "
        f"{statistics.median(m['bare_batch']):,.0f} items/s (API / that "
        f"{statistics.median([a / b for a, b in zip(m['api'], m['bare_batch'], strict=True)]):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="read,publish,push", help="any of read, publish, push")
    parser.add_argument("--items", type=int, default=20_000, help="prices posted per push run")
    parser.add_argument("--batch", type=int, default=1_000, help="items per request")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=1, help="push runs first, not counted (the broker warms up)")
    parser.add_argument("--against", metavar="REV", help="also measure the push API of this commit, first")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if args.json:
        sys.path.insert(0, str(args.root))
        assert bootstrap
        print(json.dumps(measure_push(args.root, bootstrap, args.items, args.batch, args.runs)))
        return
    sections = set(args.sections.split(","))
    if "read" in sections:
        measure_reading()
    with contextlib.ExitStack() as stack:
        if not bootstrap and sections & {"publish", "push"}:
            bootstrap = stack.enter_context(kafka_broker())
        if "publish" in sections:
            measure_feed_publish(bootstrap)
        if "push" in sections:
            measure_push_trees(bootstrap, args)


def measure_push_trees(bootstrap: str, args: argparse.Namespace) -> None:
    """The push figures of the working tree and, with --against, of that commit: one run of each in turn."""
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            extract(args.against, Path(tmp))
        before: dict[str, list] = {}
        after: dict[str, list] = {}
        # A broker the bench started is cold: its first runs are slower for the bare producer far more than for the
        # API (per run of 60,000 prices, 37,000 items/s in the first, 47,000-53,000 after), which flattered the ratio.
        for _ in range(args.warm_up):
            run_tree(ROOT, bootstrap, args.items, args.batch, 1)
        for _ in range(args.runs):  # alternating, so a change in the machine's load hits both alike
            if args.against:
                for key, values in run_tree(Path(tmp), bootstrap, args.items, args.batch, 1).items():
                    before.setdefault(key, []).extend(values)
            for key, values in run_tree(ROOT, bootstrap, args.items, args.batch, 1).items():
                after.setdefault(key, []).extend(values)
    if args.against:
        print(describe(f"at {args.against}", before, args.items, args.batch))
    print(describe("working tree", after, args.items, args.batch))
    if args.against:
        cpu = statistics.median(before["api_cpu_ms_per_1000"]) / statistics.median(after["api_cpu_ms_per_1000"])
        print(
            f"push API speed-up: {statistics.median(after['api']) / statistics.median(before['api']):.2f}x; "
            f"API CPU per item: {cpu:.2f}x less"
        )


if __name__ == "__main__":
    main()
