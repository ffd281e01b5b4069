"""First delivery: from a breach acknowledged by Kafka to its signed webhook arriving at a loopback receiver.

One organisation, one webhook channel, group wait and group interval 0, the notifier running alone in a fresh
interpreter on a fresh database. Breaches go out one at a time (a pause between them, so each is the first of
its group) and the bench times each from the producer's acknowledgement to the POST at the receiver. The
anchor in the same run is a bare aiokafka consumer that POSTs each record to the same receiver with httpx:
the floor any notifier on this path stands on.

With `--against REV` the code of that commit (extracted with `git archive`) is measured first, then the
working tree, in the same run; the figures are medians over `--runs` runs.

Run: .venv/bin/python bench/notify_first_delivery_bench.py [--against 3389b4b] [--runs 3] [--breaches 10]
     [--postgres-url postgresql+psycopg://user@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.broker import kafka_broker  # noqa: E402
from bench.harness.trees import extract  # noqa: E402

NOTIFIER = r"""
import asyncio, json, logging, sys
logging.disable(logging.INFO)
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work
from services.notify.worker import Notifier

cfg = json.loads(sys.argv[1])
settings = NotifySettings(**cfg["settings"])
url = settings.database_url
url = url.get_secret_value() if hasattr(url, "get_secret_value") else url  # a plain str in older revisions
migrate(url)
engine = create_db_engine(url)
sessions = session_factory(engine)
with unit_of_work(sessions) as s:
    org = models.Organisation(name="Bench BV", kind="company", clearance="public")
    s.add(org)
    s.flush()
    channel = models.Channel(organisation_id=org.id, kind="webhook", target=cfg["url"], secret=cfg["secret"])
    subscription = models.Subscription(organisation_id=org.id, material="gallium", min_severity="warning")
    s.add_all([channel, subscription])
    s.flush()
    s.add(models.SubscriptionChannel(subscription_id=subscription.id, channel_id=channel.id))
print("ready", flush=True)
asyncio.run(Notifier(settings, sessions, group_id=cfg["group"]).run())
"""


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server with a production-sized accept queue, quiet about clients that hang up."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops connection bursts, and each retry costs the client 1 s

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class Receiver:
    """A loopback HTTP/1.1 receiver noting when each fingerprint first arrived on each path."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as a production receiver would; else each answer waits on Nagle

            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                now = time.monotonic()
                try:
                    data = json.loads(body)
                    fingerprints = [a["fingerprint"] for a in data.get("alerts", [])] or [data.get("fingerprint")]
                except (ValueError, KeyError, TypeError):
                    fingerprints = []
                with receiver.lock:
                    for fp in fingerprints:
                        receiver.arrivals.setdefault((self.path, str(fp)), now)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def arrived(self, path: str, fingerprint: str) -> float | None:
        with self.lock:
            return self.arrivals.get((path, fingerprint))


def breach(fingerprint: str):
    from shared.events import BreachRaised, BreachStatus, Severity

    observed = datetime.now(UTC)
    return BreachRaised(
        fingerprint=fingerprint,
        material="gallium",
        rule=f"rule_{fingerprint}",
        indicator="price_volatility",
        severity=Severity.WARNING,
        status=BreachStatus.FIRING,
        value=0.42,
        warning_threshold=0.3,
        critical_threshold=0.6,
        clear_threshold=0.25,
        threshold=0.3,
        starts_at=observed - timedelta(hours=1),
        observed_at=observed,
        summary="gallium price volatility 0.42 above 0.30",
    )


async def anchor(bootstrap: str, topic: str, url: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """The floor: a bare consumer that POSTs every record it gets to the receiver."""
    import httpx
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"anchor-{uuid.uuid4().hex[:8]}", auto_offset_reset="latest"
    )
    await consumer.start()
    try:
        async with httpx.AsyncClient() as http:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
            ready.set()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    for record in records:
                        event = json.loads(record.value)
                        data = event.get("data", event)
                        await http.post(url, json={"fingerprint": data.get("fingerprint")})
    finally:
        await consumer.stop()


async def measure(tree: Path, label: str, args: argparse.Namespace, receiver: Receiver) -> dict[str, list[float]]:
    """One run against one code tree: the notifier's and the anchor's latencies, in seconds."""
    from shared import topics
    from shared.kafka import EventProducer, ensure_topics

    namespace = f"bench{uuid.uuid4().hex[:8]}"
    await ensure_topics(args.bootstrap, namespace)
    topic = topics.BREACHES.qualified(namespace)
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'notify.db'}"
        drop = None
        if args.postgres_url:
            database_url, drop = create_postgres_database(args.postgres_url)
        path = f"/{label}/{uuid.uuid4().hex[:6]}"
        cfg = {
            "group": f"bench-{namespace}",
            "url": receiver.url(path),
            "secret": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
            "settings": {
                "kafka_bootstrap_servers": args.bootstrap,
                "topic_namespace": namespace,
                "database_url": database_url,
                "allow_private_webhook_targets": True,
                "environment": "development",
                "group_wait_seconds": 0,
                "group_interval_seconds": 0,
                "repeat_interval_seconds": 24 * 3600,
                "smtp_port": 9,
            },
        }
        env = {**os.environ, "PYTHONPATH": str(tree)}
        notifier = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            NOTIFIER,
            json.dumps(cfg),
            cwd=tree,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        producer = EventProducer(args.bootstrap, source="mews/bench", namespace=namespace)
        stop, anchor_ready = asyncio.Event(), asyncio.Event()
        anchor_task = asyncio.create_task(
            anchor(args.bootstrap, topic, receiver.url(f"/anchor{path}"), anchor_ready, stop)
        )
        try:
            assert notifier.stdout is not None
            line = await asyncio.wait_for(notifier.stdout.readline(), 120)
            if line.strip() != b"ready":
                raise RuntimeError(f"{label}: the notifier did not start")
            await producer.start()
            await asyncio.wait_for(anchor_ready.wait(), 60)
            # A warm-up breach: the consumer has joined and every connection is open before timing starts.
            await producer.send(topics.BREACHES, breach("warm-up"), key="warm-up")
            await wait_for(lambda: receiver.arrived(path, "warm-up"), 60, f"{label}: warm-up delivery")
            await wait_for(lambda: receiver.arrived(f"/anchor{path}", "warm-up"), 10, "anchor warm-up")
            mews, bare = [], []
            rng = random.Random(20261201)
            for n in range(args.breaches):
                fingerprint = f"fp-{n}"
                await producer.send(topics.BREACHES, breach(fingerprint), key=fingerprint)
                acked = time.monotonic()
                got = await wait_for(lambda fp=fingerprint: receiver.arrived(path, fp), 30, f"{label}: {fingerprint}")
                floor = await wait_for(lambda fp=fingerprint: receiver.arrived(f"/anchor{path}", fp), 10, "anchor")
                mews.append(got - acked)
                bare.append(floor - acked)
                # A random pause: a fixed one would lock onto a polling period and always hit the same phase.
                await asyncio.sleep(args.pause * (0.5 + rng.random()))
            return {"mews": mews, "anchor": bare}
        finally:
            stop.set()
            await asyncio.gather(anchor_task, return_exceptions=True)
            await producer.stop()
            notifier.terminate()
            await asyncio.wait_for(notifier.wait(), 30)
            if drop:
                drop()


async def wait_for(probe, within: float, what: str) -> float:
    deadline = time.monotonic() + within
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)
    return value


def create_postgres_database(server_url: str):
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database or "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.set(database=name).render_as_string(hide_password=False), drop


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"median {statistics.median(values) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also measure the code of this commit, first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--breaches", type=int, default=10, help="timed breaches per run")
    parser.add_argument("--pause", type=float, default=0.4, help="mean seconds between breaches")
    parser.add_argument(
        "--bootstrap",
        help="a broker's bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS, or a broker this run starts)",
    )
    parser.add_argument("--postgres-url", help="measure on a database of this PostgreSQL server, not SQLite")
    args = parser.parse_args()
    if args.bootstrap is None:
        with kafka_broker() as args.bootstrap:
            await measure_all(args)
    else:
        await measure_all(args)


async def measure_all(args: argparse.Namespace) -> None:
    receiver = Receiver()
    trees: list[tuple[str, Path]] = []
    with tempfile.TemporaryDirectory(prefix="notify-bench-rev-") as base:
        if args.against:
            extract(args.against, Path(base))
            trees.append((args.against, Path(base)))
        trees.append(("working tree", ROOT))
        results: dict[str, list[dict[str, list[float]]]] = {label: [] for label, _ in trees}
        for run in range(args.runs):
            for label, tree in trees:
                result = await measure(tree, "rev" if tree != ROOT else "tree", args, receiver)
                results[label].append(result)
                print(
                    f"run {run + 1} {label:>12}: mews {ms(result['mews'])} | anchor {ms(result['anchor'])}", flush=True
                )
    database = "PostgreSQL" if args.postgres_url else "SQLite"
    print(
        f"\nfirst delivery, breach acknowledged -> webhook received ({database}, {args.breaches} breaches x "
        f"{args.runs} runs; medians of the per-run medians)"
    )
    medians = {}
    for label, runs in results.items():
        mews = statistics.median(statistics.median(r["mews"]) for r in runs)
        bare = statistics.median(statistics.median(r["anchor"]) for r in runs)
        medians[label] = mews
        print(
            f"  {label:>12}: mews {mews * 1000:7.1f} ms   bare aiokafka+httpx anchor {bare * 1000:6.1f} ms   "
            f"ratio {mews / bare:5.1f}x"
        )
    if args.against:
        print(f"  speed-up: {medians[args.against] / medians['working tree']:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
