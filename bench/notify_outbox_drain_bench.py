"""Outbox drain: N notifications already in the outbox, over M webhook channels, sent to loopback receivers.

Measures the sending half alone (no Kafka, no dispatch): from the outbox worker's start to the last POST at
the receiver, POSTs per second, and the TCP connections the receivers saw (keep-alive reuses them). With
`--slow K`, K more channels point at a second receiver that answers after `--slow-seconds`: the figure is then
the time to the last POST at the fast receiver, which a slow receiver must not stretch.
The anchor in the same run is a bare httpx client POSTing the same number of bodies with the same
concurrency: the floor of this receiver on this machine.

With `--against REV` the code of that commit (extracted with `git archive`) runs first, then the working
tree, in the same run; figures are medians over `--runs` runs.

Run: .venv/bin/python bench/notify_outbox_drain_bench.py [--against 3389b4b] [--notifications 2000]
     [--channels 50] [--slow 5] [--runs 3] [--postgres-url postgresql+psycopg://user@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.trees import extract  # noqa: E402
from bench.notify_first_delivery_bench import QuietServer, create_postgres_database  # noqa: E402

OUTBOX = r"""
import asyncio, json, logging, sys
logging.disable(logging.WARNING)
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
alert = {"id": "a", "fingerprint": "fp", "material": "gallium", "rule": "price_spike", "severity": "warning",
         "status": "firing", "classification": "public", "summary": "gallium price volatility 0.42 above 0.30",
         "evidence": [], "via": ["material:gallium"]}
with unit_of_work(sessions) as s:
    channels = []
    for n, url in enumerate(cfg["urls"]):
        org = models.Organisation(name=f"Drain {n} BV", kind="company", clearance="public")
        s.add(org)
        s.flush()
        channel = models.Channel(organisation_id=org.id, kind="webhook", target=url, secret=cfg["secret"])
        s.add(channel)
        channels.append(channel)
    s.flush()
    for n in range(cfg["notifications"]):
        channel = channels[n % len(channels)]
        s.add(models.Notification(organisation_id=channel.organisation_id, channel_id=channel.id, kind="alert",
                                  group_key=f"immediate:{channel.id}:{n}",
                                  payload={"version": "1", "kind": "alert", "status": "firing", "n": n,
                                           "alerts": [dict(alert, id=f"a{n}", fingerprint=f"fp-{n}")]}))
notifier = Notifier(settings, sessions)
print("go", flush=True)
asyncio.run(notifier.deliver())
"""


class Receiver:
    """A loopback HTTP/1.1 receiver counting POSTs and the connections they came on; answers after `delay`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.count, self.last, self.connections = 0, 0.0, set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as a production receiver would; else each answer waits on Nagle

            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.count += 1
                    receiver.last = time.monotonic()
                    receiver.connections.add(self.client_address)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.count, self.last, self.connections = 0, 0.0, set()


async def drain(tree: Path, args: argparse.Namespace, fast: Receiver, slow: Receiver) -> dict[str, float]:
    """One run on one code tree: seconds to the last fast POST, POSTs/s, connections seen."""
    fast.reset()
    slow.reset()
    with tempfile.TemporaryDirectory(prefix="notify-drain-") as tmp:
        database_url, drop = f"sqlite:///{Path(tmp) / 'notify.db'}", None
        if args.postgres_url:
            database_url, drop = create_postgres_database(args.postgres_url)
        urls = [f"http://127.0.0.1:{fast.port}/c{n}" for n in range(args.channels)] + [
            f"http://127.0.0.1:{slow.port}/s{n}" for n in range(args.slow)
        ]
        per_channel = args.notifications // args.channels
        cfg = {
            "urls": urls,
            "notifications": per_channel * len(urls),
            "secret": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
            "settings": {
                "kafka_bootstrap_servers": "127.0.0.1:1",
                "database_url": database_url,
                "allow_private_webhook_targets": True,
                "environment": "development",
                "smtp_port": 9,
                "webhook_timeout_seconds": args.slow_seconds + 5,
            },
        }
        expected_fast = per_channel * args.channels
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            OUTBOX,
            json.dumps(cfg),
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert process.stdout is not None
            if (await asyncio.wait_for(process.stdout.readline(), 300)).strip() != b"go":
                raise RuntimeError("the outbox did not start")
            started = time.monotonic()
            deadline = started + args.timeout
            while fast.count < expected_fast:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {fast.count} of {expected_fast} fast POSTs within {args.timeout} s")
                await asyncio.sleep(0.005)
            seconds = fast.last - started
            return {
                "seconds": seconds,
                "rate": expected_fast / seconds,
                "connections": len(fast.connections),
                "slow_done": slow.count,
            }
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
            if drop:
                drop()


async def anchor(args: argparse.Namespace, fast: Receiver) -> dict[str, float]:
    """The floor: a bare httpx client sending the same POSTs with the pool's concurrency per receiver."""
    import httpx

    fast.reset()
    total = (args.notifications // args.channels) * args.channels
    body = json.dumps({"alerts": [{"fingerprint": "fp", "material": "gallium"}]}).encode()
    gate = asyncio.Semaphore(args.per_target)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)) as http:

        async def post(n: int) -> None:
            async with gate:
                await http.post(f"http://127.0.0.1:{fast.port}/c{n % args.channels}", content=body)

        started = time.monotonic()
        await asyncio.gather(*(post(n) for n in range(total)))
    seconds = fast.last - started
    return {"seconds": seconds, "rate": total / seconds, "connections": len(fast.connections)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also measure the code of this commit, first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--notifications", type=int, default=2000, help="to the fast receiver, over --channels")
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--slow", type=int, default=0, help="channels to a receiver answering after --slow-seconds")
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    parser.add_argument("--per-target", type=int, default=10, help="the anchor's concurrency (the pool's default)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--postgres-url", help="measure on a database of this PostgreSQL server, not SQLite")
    args = parser.parse_args()
    fast, slow = Receiver(), Receiver(args.slow_seconds)
    trees: list[tuple[str, Path]] = []
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="notify-drain-rev-") as base:
        if args.against:
            extract(args.against, Path(base))
            trees.append((args.against, Path(base)))
        trees.append(("working tree", ROOT))
        for run in range(args.runs):
            for label, tree in trees:
                result = await drain(tree, args, fast, slow)
                results.setdefault(label, []).append(result)
                print(
                    f"run {run + 1} {label:>12}: {result['seconds']:7.2f} s  {result['rate']:7.0f} POSTs/s  "
                    f"{result['connections']:4.0f} connections  slow answered {result['slow_done']:.0f}",
                    flush=True,
                )
            result = await anchor(args, fast)
            results.setdefault("anchor", []).append(result)
            print(
                f"run {run + 1} {'bare httpx':>12}: {result['seconds']:7.2f} s  {result['rate']:7.0f} POSTs/s  "
                f"{result['connections']:4.0f} connections",
                flush=True,
            )
    database = "PostgreSQL" if args.postgres_url else "SQLite"
    total = (args.notifications // args.channels) * args.channels
    print(
        f"\noutbox drain: {total} notifications over {args.channels} channels to one receiver"
        + (f", {args.slow} more channels to one answering after {args.slow_seconds:g} s" if args.slow else "")
        + f" ({database}; medians of {args.runs} runs)"
    )
    floor = statistics.median(r["seconds"] for r in results["anchor"])
    for label, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rate = statistics.median(r["rate"] for r in runs)
        connections = statistics.median(r["connections"] for r in runs)
        print(
            f"  {label:>12}: {seconds:7.2f} s to the last fast POST  {rate:7.0f} POSTs/s  "
            f"{connections:4.0f} connections  {seconds / floor:5.1f}x the bare client"
        )
    if args.against:
        before = statistics.median(r["seconds"] for r in results[args.against])
        after = statistics.median(r["seconds"] for r in results["working tree"])
        print(f"  speed-up: {before / after:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
