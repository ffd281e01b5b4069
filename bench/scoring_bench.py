"""Scoring throughput on a real broker: `mews scoring run` against a bare consumer reading the same topic.

Each run produces N daily prices (geometric Brownian motion, seeded, keyed by material, in day order as a
backfill arrives) into the prices topic of a fresh namespace, then measures in the same run:
  consumer  a bare aiokafka consumer decoding every message with `shared.events.decode` (the anchor);
  worker    the scoring worker as a user starts it, from process start until its committed offsets reach
            the end of every partition: events/s (whole run and 10 % to 90 %), the ratio to the anchor, the
            time to its first commit (start-up: imports, group join, table recovery, first persist), CPU
            seconds per 1,000 events, peak RSS (VmHWM) and RSS at 50 % and 100 % of the inputs;
  restart   with the worker scoring a live batch, `kill -9`, start it again (same port and data folder, so
            the same default group instance id) and time until /readyz answers 200 and until a marker
            price produced after the restart is scored;
  memory    a worker holding every catalog material (75) with full histories: peak RSS, RSS at 50 % / 100 %;
  backtest  the same prices replayed in process by `services.scoring.backtest`: events/s.
Committed offsets move once per commit interval, so a worker's end is seen up to one interval late.

With `--against REV` the code of that commit (`git archive` into a temporary folder, run with PYTHONPATH)
is measured in each run too, just before the working tree; `--runs K` prints medians. Uses the broker in
KAFKA_BOOTSTRAP_SERVERS, or starts one of its own (deploy/local/kafka.sh) on free ports.

Run: .venv/bin/python bench/scoring_bench.py [--events 100000] [--materials 50] [--runs 3] [--against 3389b4b]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.broker import kafka_broker  # noqa: E402
from bench.harness.trees import compile_tree, extract  # noqa: E402

STEPS = ("consumer", "worker", "restart", "memory", "backtest")
SOURCE = "bench/scoring"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the workload ---------------------------------------------------------------------------------------------


def catalog_materials(count: int | None = None) -> list[str]:
    """The first `count` catalog material ids (all of them if None)."""
    from shared.catalog import load_catalog

    ids = sorted(m.id for m in load_catalog().materials)
    if count is None:
        return ids
    if count > len(ids):
        raise SystemExit(f"--materials {count}: the catalog has {len(ids)} materials")
    return ids[:count]


def business_days(count: int, end: datetime) -> list[datetime]:
    """The last `count` weekdays up to `end`, oldest first."""
    days: list[datetime] = []
    day = end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def daily_prices(events: int, materials: list[str], seed: int = 20261201) -> list[tuple[str, datetime, float]]:
    """`events` prices spread over the materials, one a business day each, in day order (material within a day)."""
    rng = random.Random(seed)
    per = [events // len(materials) + (i < events % len(materials)) for i in range(len(materials))]
    end = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=60)
    days = business_days(max(per), end)
    rows: list[tuple[int, int, str, datetime, float]] = []
    for m, (material, count) in enumerate(zip(materials, per, strict=True)):
        price = rng.uniform(5, 5000)
        sigma = rng.uniform(0.15, 0.6) / math.sqrt(252)
        for d, day in enumerate(days[len(days) - count :]):
            jump = rng.gauss(0, 8 * sigma) if rng.random() < 0.002 else 0.0
            price *= math.exp(rng.gauss(0, sigma) + jump)
            rows.append((d + len(days) - count, m, material, day, round(price, 4)))
    rows.sort()
    return [(material, day, price) for _, _, material, day, price in rows]


def price_event(material: str, day: datetime, price: float):  # -> shared.events.PriceObserved
    from shared.events import PriceObserved

    return PriceObserved(
        material=material,
        source="bench-exchange",
        observed_at=day,
        price=price,
        currency="USD",
        unit="t",
        series="spot",
    )


def encoded(prices: list[tuple[str, datetime, float]]) -> list[tuple[bytes, bytes]]:
    """(key, value) of each price as ingest writes it: key = material, CloudEvents envelope, deterministic id."""
    from shared.events import encode
    from shared.kafka import event_id_for

    out = []
    for material, day, price in prices:
        event = price_event(material, day, price)
        out.append((material.encode(), encode(event, source=SOURCE, event_id=event_id_for(event.dedup_key()))))
    return out


# --- the broker ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Write every message (acks=all) and wait for all of them; the seconds it took."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(0, len(messages), 20_000):
            pending = [await producer.send(topic, value, key=key) for key, value in messages[i : i + 20_000]]
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()


async def read_bare(bootstrap: str, topic: str, ends: dict) -> dict:
    """The anchor: read the topic from the beginning to `ends` and decode every message; seconds and CPU."""
    from aiokafka import AIOKafkaConsumer

    from shared.events import PriceObserved, decode

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        w0, c0 = time.perf_counter(), time.process_time()
        read, positions = 0, dict.fromkeys(ends, 0)
        while any(positions[tp] < end for tp, end in ends.items()):
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                for m in messages:
                    decode(m.value, PriceObserved)
                read += len(messages)
                positions[tp] = messages[-1].offset + 1
        return {"events": read, "seconds": time.perf_counter() - w0, "cpu": time.process_time() - c0}
    finally:
        await consumer.stop()


async def delete_namespace(bootstrap: str, namespace: str) -> None:
    """Delete every topic of a namespace (the inputs, outputs and the worker's changelog) from the broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mews-bench")
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(f"{namespace}.")]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


async def committed(admin, group: str, partitions: list) -> int:
    """Offsets the group has committed on these partitions, summed (0 before it has any)."""
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    except Exception:  # the group or its coordinator does not exist yet
        return 0
    return sum(max(0, o.offset) for tp, o in offsets.items() if tp in partitions)


# --- the worker process ----------------------------------------------------------------------------------------


class Worker:
    """`mews scoring run` of one code tree as a subprocess, as the `mews` entry point starts it."""

    def __init__(
        self,
        tree: Path,
        bootstrap: str,
        namespace: str,
        workdir: Path,
        port: int,
        store: str,
        extra_env: dict[str, str],
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "worker.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MEWS_TOPIC_NAMESPACE": namespace,
            "MEWS_SCORING_PORT": str(port),
            "MEWS_SCORING_DATA_DIR": str(workdir / "data"),
            "MEWS_SCORING_STORE": store,
            **extra_env,
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from services.cli import main; main()", "scoring", "run"],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()

    def _status(self, field_name: str) -> int:
        """A VmRSS / VmHWM line of /proc/<pid>/status, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def rss(self) -> int:
        return self._status("VmRSS")

    def peak_rss(self) -> int:
        return self._status("VmHWM")

    def cpu(self) -> float:
        """User plus system CPU seconds of the worker process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Progress:
    """Samples of one worker's committed offsets: (seconds since start, committed, CPU seconds, RSS)."""

    samples: list[tuple[float, int, float, int]] = field(default_factory=list)

    def time_to(self, count: float) -> float:
        return next(t for t, done, _, _ in self.samples if done >= count)

    def at(self, count: float) -> tuple[float, int, float, int]:
        return next(s for s in self.samples if s[1] >= count)


async def follow(worker: Worker, bootstrap: str, group: str, ends: dict, limit: float) -> Progress:
    """Sample the worker until its group has committed every partition to its end offset."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mews-bench")
    await admin.start()
    progress, total, partitions = Progress(), sum(ends.values()), list(ends)
    try:
        while True:
            worker.check()
            done = await committed(admin, group, partitions)
            progress.samples.append((time.monotonic() - worker.started, done, worker.cpu(), worker.rss()))
            if done >= total:
                return progress
            if time.monotonic() - worker.started > limit:
                raise RuntimeError(f"worker committed {done} of {total} in {limit:.0f} s:\n{worker.tail()}")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


def worker_figures(worker: Worker, progress: Progress, events: int) -> dict:
    end_t, _, end_cpu, end_rss = progress.at(events)
    t10, t90 = progress.time_to(0.1 * events), progress.time_to(0.9 * events)
    _, _, cpu10, _ = progress.at(0.1 * events)
    _, _, cpu90, _ = progress.at(0.9 * events)
    first_t = next((t for t, done, _, _ in progress.samples if done > 0), end_t)
    return {
        "seconds": end_t,
        "rate": events / end_t,
        "first_commit_s": first_t,
        "steady_rate": 0.8 * events / (t90 - t10) if t90 > t10 else None,
        "cpu_per_1k": end_cpu / events * 1000,
        "steady_cpu_per_1k": (cpu90 - cpu10) / (0.8 * events) * 1000 if t90 > t10 else None,
        "peak_rss": worker.peak_rss(),
        "rss_50": progress.at(0.5 * events)[3],
        "rss_100": end_rss,
    }


async def wait_ready(url: str, deadline: float) -> float | None:
    """Monotonic time at which /readyz first answers 200 (None if not by the deadline)."""
    import httpx

    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return time.monotonic()
            await asyncio.sleep(0.1)
    return None


async def wait_scored(bootstrap: str, material: str, price: float, deadline: float, positions: dict) -> float | None:
    """Monotonic time at which a snapshot of `material` at `price` appears after `positions` (None if never)."""
    from aiokafka import AIOKafkaConsumer

    from shared.events import decode

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for m in messages:
                    _, snap = decode(m.value)
                    if getattr(snap, "material", None) == material and snap.indicators.get("price") == price:
                        return time.monotonic()
        return None
    finally:
        await consumer.stop()


async def measure_restart(
    tree: Path,
    bootstrap: str,
    namespace: str,
    workdir: Path,
    port: int,
    store: str,
    extra_env: dict[str, str],
    worker: Worker,
    prices: list[tuple[str, datetime, float]],
    limit: float,
) -> dict:
    """Feed a live batch, kill -9 the worker once it scores it, start it again: seconds to ready and to scored."""
    from shared import topics as declared

    indicators = declared.INDICATORS.qualified(namespace)
    inputs = declared.PRICES.qualified(namespace)
    positions = await end_offsets(bootstrap, indicators, declared.INDICATORS.partitions)
    # The newest price of a material is in its next snapshot, whether snapshots are per input or on a beat.
    last: dict[str, tuple[datetime, float]] = {m: (d, p) for m, d, p in prices}
    live = [(m, d + timedelta(days=k), p * (1 + 0.001 * k)) for k in range(1, 6) for m, (d, p) in last.items()]
    marker_material, (marker_day, marker_price) = prices[0][0], last[prices[0][0]]
    marker_day, marker_price = marker_day + timedelta(days=30), round(marker_price * 1.0123, 4)
    await produce(bootstrap, inputs, encoded(live))
    newest = live[-1]
    if await wait_scored(bootstrap, newest[0], newest[2], time.monotonic() + limit, positions) is None:
        raise RuntimeError(f"the live batch was not scored in {limit:.0f} s:\n{worker.tail()}")
    worker.kill()
    restarted = Worker(tree, bootstrap, namespace, workdir, port, store, extra_env)
    after = await end_offsets(bootstrap, indicators, declared.INDICATORS.partitions)
    await produce(bootstrap, inputs, encoded([(marker_material, marker_day, marker_price)]))
    deadline = restarted.started + limit
    ready, scored = await asyncio.gather(
        wait_ready(restarted.url, deadline), wait_scored(bootstrap, marker_material, marker_price, deadline, after)
    )
    restarted.stop()
    return {
        "to_ready": None if ready is None else ready - restarted.started,
        "to_scored": None if scored is None else scored - restarted.started,
    }


# --- one run of one code tree ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_namespace(bootstrap: str, keep: bool) -> AsyncIterator[str]:
    """A namespace of this step alone with every declared topic; its topics are deleted afterwards unless kept."""
    from shared.kafka import ensure_topics

    namespace = f"bench{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, namespace)
    try:
        yield namespace
    finally:
        if not keep:
            await delete_namespace(bootstrap, namespace)


async def measure_tree(tree: Path, bootstrap: str, args: argparse.Namespace, workdir: Path) -> dict:
    from shared import topics as declared

    out: dict = {}
    materials = catalog_materials(args.materials)
    if {"consumer", "worker", "restart"} - args.skip:
        async with fresh_namespace(bootstrap, args.keep_topics) as namespace:
            topic = declared.PRICES.qualified(namespace)
            prices = daily_prices(args.events, materials)
            out["produce_s"] = await produce(bootstrap, topic, encoded(prices))
            ends = await end_offsets(bootstrap, topic, declared.PRICES.partitions)
            if "consumer" not in args.skip:
                out["consumer"] = await read_bare(bootstrap, topic, ends)
            if not {"worker", "restart"} <= args.skip:
                port = free_port()
                worker = Worker(tree, bootstrap, namespace, workdir, port, args.store, args.env)
                try:
                    progress = await follow(worker, bootstrap, f"{namespace}.mews-scoring", ends, args.timeout)
                    out["worker"] = worker_figures(worker, progress, args.events)
                    if "restart" not in args.skip:
                        out["restart"] = await measure_restart(
                            tree,
                            bootstrap,
                            namespace,
                            workdir,
                            port,
                            args.store,
                            args.env,
                            worker,
                            prices,
                            args.timeout,
                        )
                finally:
                    worker.stop()
    if "memory" not in args.skip:
        async with fresh_namespace(bootstrap, args.keep_topics) as namespace:
            topic = declared.PRICES.qualified(namespace)
            everything = catalog_materials()
            count = len(everything) * args.memory_prices
            await produce(bootstrap, topic, encoded(daily_prices(count, everything)))
            ends = await end_offsets(bootstrap, topic, declared.PRICES.partitions)
            memdir = workdir / "memory"
            memdir.mkdir()
            worker = Worker(tree, bootstrap, namespace, memdir, free_port(), args.store, args.env)
            try:
                progress = await follow(worker, bootstrap, f"{namespace}.mews-scoring", ends, args.timeout)
                figures = worker_figures(worker, progress, count)
                out["memory"] = {
                    "materials": len(everything),
                    "events": count,
                    **{k: figures[k] for k in ("peak_rss", "rss_50", "rss_100")},
                }
            finally:
                worker.stop()
    return out


def measure_backtest(tree: Path, args: argparse.Namespace) -> dict:
    """The backtest of the code tree at `tree`, in a fresh interpreter."""
    run = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--backtest-json",
            "--root",
            str(tree),
            "--events",
            str(args.backtest_events),
            "--materials",
            str(args.materials),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    )
    return json.loads(run.stdout.splitlines()[-1])


def backtest_json(root: Path, events: int, materials: int) -> dict:
    """The backtest over the same kind of prices, in this interpreter with the code tree at `root`."""
    sys.path.insert(0, str(root))
    from services.scoring.backtest import ReadReport, _input, merge_inputs, replay
    from services.scoring.config import load_config

    report = ReadReport()
    report.inputs = [_input(price_event(m, d, p)) for m, d, p in daily_prices(events, catalog_materials(materials))]
    config = load_config(None)
    inputs = merge_inputs([report])
    w0, c0 = time.perf_counter(), time.process_time()
    result = replay(inputs, config)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        "events": len(inputs),
        "seconds": wall,
        "cpu": cpu,
        "rate": len(inputs) / wall,
        "breaches": len(result.breaches),
    }


# --- the report ------------------------------------------------------------------------------------------------


def median(runs: list[dict], *path: str) -> float | None:
    values = []
    for r in runs:
        for key in path:
            r = r.get(key) if isinstance(r, dict) else None
        if isinstance(r, int | float):
            values.append(r)
    return statistics.median(values) if values else None


def paired_ratios(runs: list[dict]) -> list[str]:
    """Each run's worker against that run's own anchor, and their median (the ratio above is of the medians)."""
    paired = [r["consumer"]["seconds"] / r["worker"]["seconds"] for r in runs if r.get("consumer") and r.get("worker")]
    if len(paired) < 2:
        return []
    each = ", ".join(f"{x:.4f}" for x in paired)
    return [f"  ratio per run            {each} (median {statistics.median(paired):.4f})"]


def fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def describe(label: str, runs: list[dict], events: int) -> list[str]:
    mib = 1 / (1024 * 1024)
    lines = [f"{label} (medians of {len(runs)} run{'s' if len(runs) > 1 else ''}):"]
    consumer = median(runs, "consumer", "seconds")
    anchor = events / consumer if consumer else None
    if consumer:
        lines.append(
            f"  bare consumer + decode   {anchor:>10,.0f} events/s   "
            f"{fmt(median(runs, 'consumer', 'cpu'), '.3f')} s CPU "
            f"({median(runs, 'consumer', 'cpu') / events * 1000:.4f} s per 1,000)"
        )
    if median(runs, "worker", "rate") is not None:
        rate, steady = median(runs, "worker", "rate"), median(runs, "worker", "steady_rate")
        ratio = f"   ratio {rate / anchor:.4f}" if anchor else ""
        steady_ratio = f"   ratio {steady / anchor:.4f}" if anchor and steady else ""
        lines += [
            f"  scoring worker           {rate:>10,.0f} events/s{ratio}   (start to committed end, "
            f"{median(runs, 'worker', 'seconds'):.1f} s)",
            f"  scoring worker 10-90 %   {fmt(steady, '>10,.0f')} events/s{steady_ratio}",
            *paired_ratios(runs),
            f"  worker first commit      {fmt(median(runs, 'worker', 'first_commit_s'), '.1f', ' s')} after its start "
            "(start-up, group join, table recovery, first persist)",
            f"  worker CPU               {median(runs, 'worker', 'cpu_per_1k'):.3f} s per 1,000 events "
            f"(start to end; 10-90 %: {fmt(median(runs, 'worker', 'steady_cpu_per_1k'), '.3f')})",
            f"  worker RSS               peak {median(runs, 'worker', 'peak_rss') * mib:.0f} MiB; at 50 % "
            f"{median(runs, 'worker', 'rss_50') * mib:.0f} MiB, at 100 % "
            f"{median(runs, 'worker', 'rss_100') * mib:.0f} MiB",
        ]
    if median(runs, "restart", "to_scored") is not None or any("restart" in r for r in runs):
        lines.append(
            f"  restart after kill -9    ready in {fmt(median(runs, 'restart', 'to_ready'), '.1f', ' s')}, "
            f"first new input scored in {fmt(median(runs, 'restart', 'to_scored'), '.1f', ' s')} "
            f"(runs: {', '.join(fmt(r.get('restart', {}).get('to_scored'), '.1f') for r in runs)} s)"
        )
    if median(runs, "memory", "peak_rss") is not None:
        m = runs[0]["memory"]
        lines.append(
            f"  {m['materials']} materials x {m['events'] // m['materials']} prices  peak RSS "
            f"{median(runs, 'memory', 'peak_rss') * mib:.0f} MiB; RSS at 50 % "
            f"{median(runs, 'memory', 'rss_50') * mib:.0f} MiB, at 100 % "
            f"{median(runs, 'memory', 'rss_100') * mib:.0f} MiB"
        )
    if median(runs, "backtest", "rate") is not None:
        events_bt = runs[0]["backtest"]["events"]
        lines.append(
            f"  backtest                 {median(runs, 'backtest', 'rate'):>10,.0f} events/s "
            f"({events_bt / median(runs, 'backtest', 'cpu'):,.0f} per CPU second; {events_bt:,} events, "
            f"{median(runs, 'backtest', 'seconds'):.2f} s, {runs[0]['backtest']['breaches']} breach events)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="prices produced per run")
    parser.add_argument("--materials", type=int, default=50, help="materials the prices are spread over (<= 75)")
    parser.add_argument(
        "--memory-prices",
        type=int,
        default=800,
        help="prices per material in the memory step (the history keeps 400 per series)",
    )
    parser.add_argument("--backtest-events", type=int, default=None, help="prices in the backtest (default: --events)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--against", metavar="REV", help="also measure the code of this commit, in every run")
    parser.add_argument("--skip", action="append", default=[], choices=STEPS, help="leave a step out; repeatable")
    parser.add_argument("--store", default="memory://", help="MEWS_SCORING_STORE of the workers")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the workers, e.g. MEWS_SCORING_STATIC_MEMBERSHIP=false",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a worker may take for one step")
    parser.add_argument("--keep-topics", action="store_true", help="leave each run's topics on the broker")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs in this folder")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--backtest-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries right after topic creation are expected
    # Stopped from outside, still stop the workers and the broker of this run (the `finally` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.skip = set(args.skip)
    args.env = dict(item.split("=", 1) for item in args.env)
    if args.backtest_events is None:
        args.backtest_events = args.events
    if args.backtest_json:
        print(json.dumps(backtest_json(args.root, args.events, args.materials)))
        return
    sizes = [f"{args.events:,} daily prices over {args.materials} materials"]
    if not {"consumer", "worker", "restart", "backtest"} - args.skip:
        sizes = []
    if "memory" not in args.skip:
        sizes.append(f"memory step {args.memory_prices} prices x every catalog material")
    settings = "".join(f"; {k}={v}" for k, v in args.env.items())
    print(f"workload per run: {'; '.join(sizes)}; store {args.store}{settings}")
    with tempfile.TemporaryDirectory(prefix="mews-bench-") as tmp, kafka_broker() as bootstrap:
        trees = [("working tree", ROOT)]
        if args.against:
            before = Path(tmp) / "before"
            extract(args.against, before)
            trees.insert(0, (f"at {args.against}", before))
        for _, tree in trees:
            compile_tree(tree)
        results: dict[str, list[dict]] = {label: [] for label, _ in trees}
        for run in range(args.runs):
            for label, tree in trees:
                workdir = (args.logs or Path(tmp)) / f"run{run + 1}-{label.replace(' ', '-')}"
                workdir.mkdir(parents=True)
                figures = asyncio.run(measure_tree(tree, bootstrap, args, workdir))
                if "backtest" not in args.skip:
                    figures["backtest"] = measure_backtest(tree, args)
                results[label].append(figures)
                print(f"run {run + 1} {label}: {json.dumps(figures)}", file=sys.stderr, flush=True)
    for label, _ in trees:
        print("\n".join(describe(label, results[label], args.events)))
    if args.against and all(median(results[label], "worker", "rate") for label, _ in trees):
        (b, _), (a, _) = trees
        print(f"worker speed-up: {median(results[a], 'worker', 'rate') / median(results[b], 'worker', 'rate'):.2f}x")


if __name__ == "__main__":
    main()
