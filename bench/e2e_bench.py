"""End to end: prices POSTed to ingest at an offered rate become signed webhooks, through scoring and notify.

The stack is the one `make run` starts (deploy/local/stack.py: ingest, scoring and notify as processes on a real
broker), with group wait and group interval 0 and one organisation subscribed, by webhook to a loopback receiver,
to every material the prices are about. Each material gets one price per simulated day: flat, with a 25 % spike every
tenth day, so price-change rules fire and resolve on a fixed beat; which transitions must arrive is computed by
replaying the same prices through the scoring engine (services/scoring/backtest.py) in this process.

Printed: end-to-end latency from the POST of the price that caused a transition to the arrival of the signed webhook
carrying it (p50, p99), transitions expected and arrived (within the offered period and after draining), peak
scoring consumer lag (the worker's own gauge, and committed offsets against end offsets) and how long lag takes to
return to 0 after the last price. Where the time goes, per arrived transition (p50, p99): ingest's answer to the
POST, the price's Kafka record time (ingest's producer), the breach's (scoring's producer), the start of notify's
dispatch transaction that enqueued it (its notification's created_at) and the webhook's arrival; and notify's own
histograms of its dispatch transactions, of enqueue to outbox claim and of the POST. The anchor, in the same run:
a bare aiokafka producer and consumer pair moving the same event bytes at the same rate through one topic; its
p50/p99 and the ratio. `--against REV` runs the services
as of commit REV (git archive into a temporary folder) in the same run.

Run: .venv/bin/python bench/e2e_bench.py [--rate 100] [--duration 30] [--materials 50] [--runs 1]
     [--against 3389b4b]; KAFKA_BOOTSTRAP_SERVERS names the broker (unset: the bench starts
     one of its own with deploy/local/kafka.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.broker import kafka_broker  # noqa: E402
from bench.harness.figures import fmt, median_of, percentile  # noqa: E402
from bench.harness.receiver import Receiver  # noqa: E402
from bench.harness.trees import ROOT, code_tree, describe_tree, spawn_service  # noqa: E402
from deploy.local.stack import DEMO_ADMIN_TOKEN, DEMO_INGEST_KEY, Ports, Stack  # noqa: E402

FIRST_DAY = datetime(2020, 1, 1, tzinfo=UTC)
SPIKE_EVERY = 10  # days: a spike each tenth day, back to base the next
SPIKE = 1.25  # +25 %: price-change-1d warns above 20 %, clears below 10 %
LANES = 4  # concurrent senders; a material always goes through the same one, so its prices stay in order
TICK_S = 0.02


@dataclass(frozen=True)
class Price:
    material: str
    day: int
    price: float

    @property
    def observed_at(self) -> datetime:
        return FIRST_DAY + timedelta(days=self.day)

    def item(self) -> dict:
        return {
            "material": self.material,
            "price": self.price,
            "currency": "USD",
            "unit": "t",
            "observed_at": self.observed_at.isoformat().replace("+00:00", "Z"),
            "source": "bench",
        }


def price_schedule(materials: list[str], count: int) -> list[Price]:
    """`count` prices, one day of every material in turn, flat at 100 with a spike every SPIKE_EVERY-th day."""
    out = []
    for n in range(count):
        day, m = divmod(n, len(materials))
        price = 100.0 * SPIKE if day % SPIKE_EVERY == SPIKE_EVERY - 1 else 100.0
        out.append(Price(materials[m], day, price))
    return out


Transition = tuple[str, str, str, str]  # material, rule, status, observed_at (ISO, UTC)


def transition_key(material: str, rule: str, status: str, observed_at: str | datetime) -> Transition:
    when = observed_at if isinstance(observed_at, datetime) else datetime.fromisoformat(observed_at)
    return (material, rule, status, when.astimezone(UTC).isoformat())


def expected_transitions(prices: list[Price]) -> list[Transition]:
    """The breach transitions the scoring engine makes of these prices: the backtest replay of them."""
    from services.scoring.backtest import ReadReport, _input, merge_inputs, replay
    from services.scoring.config import load_config
    from shared.events import PriceObserved

    report = ReadReport()
    report.inputs = [
        _input(
            PriceObserved(
                material=p.material, source="bench", observed_at=p.observed_at, price=p.price, currency="USD", unit="t"
            )
        )
        for p in prices
    ]
    result = replay(merge_inputs([report]), load_config(None))
    return [transition_key(b.material, b.rule, str(b.status), b.observed_at) for b in result.breaches]


def materials_from_catalog(count: int) -> tuple[list[str], str]:
    """`count` catalogued materials for the prices and one more for the warm-up probe."""
    from shared.catalog.loader import load_catalog

    ids = [m.id for m in load_catalog().materials]
    if count + 1 > len(ids):
        raise SystemExit(f"--materials at most {len(ids) - 1}: the catalogue holds {len(ids)}")
    return ids[:count], ids[count]


# --- offering prices: open loop, on a schedule -----------------------------------------------------------------


async def offer(send, prices: list[Price], rate: float, lanes: int = LANES) -> dict[tuple[str, int], float]:
    """Send every price at its scheduled time (`rate` per second) through `lanes` in-order senders.

    `send(batch)` delivers one batch; a lane that falls behind sends everything due at once, so the offered rate
    holds while the system under test is slow. Returns when each price's send began, by (material, day).
    """
    sent_at: dict[tuple[str, int], float] = {}
    by_lane: dict[int, list[tuple[float, Price]]] = defaultdict(list)
    lane_of: dict[str, int] = {}
    for n, p in enumerate(prices):
        lane = lane_of.setdefault(p.material, len(lane_of) % lanes)
        by_lane[lane].append((n / rate, p))
    start = time.monotonic()

    async def run_lane(queue: list[tuple[float, Price]]) -> None:
        i = 0
        while i < len(queue):
            elapsed = time.monotonic() - start
            if queue[i][0] > elapsed:
                await asyncio.sleep(min(TICK_S, queue[i][0] - elapsed))
                continue
            j = i
            while j < len(queue) and queue[j][0] <= elapsed:
                j += 1
            batch = [p for _, p in queue[i:j]]
            now = time.time()
            for p in batch:
                sent_at[(p.material, p.day)] = now
            await send(batch)
            i = j

    await asyncio.gather(*(run_lane(q) for q in by_lane.values()))
    return sent_at


# --- the anchor: bare aiokafka producer and consumer on the same path -------------------------------------------


async def anchor_latencies(bootstrap: str, prices: list[Price], rate: float) -> list[float]:
    """Latency of each price's event bytes from a bare producer to a bare consumer of one fresh topic."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from shared import topics
    from shared.events import PriceObserved, encode
    from shared.kafka import ensure_topics

    namespace = f"bench-e2e-anchor-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, namespace, wanted=[topics.PRICES])
    topic = topics.PRICES.qualified(namespace)
    payload = {
        (p.material, p.day): encode(
            PriceObserved(
                material=p.material, source="bench", observed_at=p.observed_at, price=p.price, currency="USD", unit="t"
            ),
            source="mews/ingest",
        )
        for p in prices
    }
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        await consumer.seek_to_beginning()
        # One record first, off the clock: the first send pays for metadata, the first fetch for the assignment.
        await producer.send_and_wait(topic, b"warm-up", key=b"warm-up")
        deadline = time.monotonic() + 30
        while not any(r.value == b"warm-up" for rs in (await consumer.getmany(timeout_ms=500)).values() for r in rs):
            if time.monotonic() > deadline:
                raise RuntimeError("the bare consumer never saw its warm-up record")

        async def consume() -> None:
            while len(latencies) < len(prices):
                batches = await consumer.getmany(timeout_ms=200)
                now = time.time()
                latencies.extend(now - sent[r.value] for records in batches.values() for r in records)

        async def send(batch: list[Price]) -> None:
            futures = []
            for p in batch:
                value = payload[(p.material, p.day)]
                sent[value] = time.time()
                futures.append(await producer.send(topic, value, key=p.material.encode()))
            await asyncio.gather(*futures)

        reader = asyncio.create_task(consume())
        await offer(send, prices, rate)
        await asyncio.wait_for(reader, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


# --- lag: the worker's gauge and committed offsets ------------------------------------------------------------

LAG_LINE = re.compile(r'^mews_consumer_lag_messages\{[^}]*service="scoring"[^}]*\}\s+([0-9.e+]+)$', re.MULTILINE)


class LagWatch:
    """Samples scoring's consumer lag every `every` seconds in a thread of its own, until stopped."""

    def __init__(
        self, bootstrap: str, group_id: str, topic: str, partitions: int, metrics_url: str, every: float = 0.25
    ) -> None:
        self.bootstrap, self.group_id, self.topic, self.partitions = bootstrap, group_id, topic, partitions
        self.metrics_url, self.every = metrics_url, every
        self.committed: list[tuple[float, int]] = []  # (time.time(), end offsets minus committed offsets)
        self.gauge: list[tuple[float, float]] = []  # (time.time(), the worker's mews_consumer_lag_messages)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="lag", daemon=True)

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        ends = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        await admin.start()
        await ends.start()
        try:
            partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            async with httpx.AsyncClient(timeout=2) as http:
                while not self._stop.is_set():
                    now = time.time()
                    try:
                        end = await ends.end_offsets(partitions)
                        committed = await admin.list_consumer_group_offsets(self.group_id, partitions=partitions)
                        done = {tp: (om.offset if om.offset >= 0 else 0) for tp, om in committed.items()}
                        self.committed.append((now, sum(max(0, end[tp] - done.get(tp, 0)) for tp in partitions)))
                    except Exception:  # noqa: BLE001, S110 - a missed sample is only a gap in the series
                        pass
                    try:
                        found = LAG_LINE.findall((await http.get(self.metrics_url)).text)
                        if found:
                            self.gauge.append((now, sum(float(v) for v in found if v)))
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(self.every)
        finally:
            await ends.stop()
            await admin.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class HopWatch:
    """Reads the namespace's prices and breaches topics in a thread of its own and keeps each event's Kafka
    record time (the producer's clock: ingest for a price, scoring for a breach), by price and by transition."""

    def __init__(self, bootstrap: str, prices_topic: str, breaches_topic: str) -> None:
        self.bootstrap, self.prices_topic, self.breaches_topic = bootstrap, prices_topic, breaches_topic
        self.price_at: dict[tuple[str, str], float] = {}  # (material, observed_at ISO) -> record time
        self.breach_at: dict[Transition, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="hops", daemon=True)

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from shared.events import BreachRaised, EnvelopeError, PriceObserved, decode

        consumer = AIOKafkaConsumer(
            self.prices_topic,
            self.breaches_topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            while not self._stop.is_set():
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    for r in records:
                        try:
                            _, event = decode(r.value)
                        except EnvelopeError:
                            continue
                        at = r.timestamp / 1000
                        if tp.topic == self.prices_topic and isinstance(event, PriceObserved):
                            key = (event.material, event.observed_at.astimezone(UTC).isoformat())
                            self.price_at.setdefault(key, at)
                        elif isinstance(event, BreachRaised):
                            self.breach_at.setdefault(
                                transition_key(event.material, event.rule, str(event.status), event.observed_at), at
                            )
        finally:
            await consumer.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def enqueued_at(database: Path) -> dict[Transition, float]:
    """When notify's dispatch transaction that put each transition in a notification began (its created_at)."""
    import sqlite3

    out: dict[Transition, float] = {}
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT created_at, payload FROM notifications WHERE kind != 'admin_notice' ORDER BY created_at"
        ).fetchall()
    for created, payload in rows:
        at = datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp()
        for a in json.loads(payload).get("alerts", []):
            if a.get("observed_at"):
                out.setdefault(transition_key(a["material"], a["rule"], a["status"], a["observed_at"]), at)
    return out


HISTOGRAMS = {
    "dispatch transaction": "mews_notify_dispatch_seconds",
    "enqueue -> claim": "mews_notify_outbox_claim_delay_seconds",
    "POST (send)": "mews_notify_delivery_send_seconds",
}


def histogram_quantiles(text: str, name: str) -> tuple[float | None, float | None, int]:
    """The upper bounds of the buckets holding the p50 and p99 of a Prometheus histogram (summed over its
    labels), and its count."""
    buckets: dict[float, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            bound = re.search(r'le="([^"]+)"', line)
            if bound:
                buckets[float(bound.group(1))] += float(line.rsplit(" ", 1)[1])
    if not buckets or not buckets[max(buckets)]:
        return None, None, 0
    total = buckets[max(buckets)]
    bounds = sorted(buckets)

    def q(p: float) -> float:
        return next(b for b in bounds if buckets[b] >= p * total)

    return q(0.5), q(0.99), int(total)


def back_to_zero(samples: list[tuple[float, float]], after: float) -> float | None:
    """Seconds from `after` until the first sample at 0 that stays 0 to the end; None if lag never settles."""
    zero_from = None
    for t, lag in samples:
        if t < after:
            continue
        if lag == 0 and zero_from is None:
            zero_from = t
        elif lag != 0:
            zero_from = None
    return None if zero_from is None else max(0.0, zero_from - after)


# --- the stack ------------------------------------------------------------------------------------------------


@dataclass
class BenchStack(Stack):
    """The local stack, its services run from `tree`, grouping without waits."""

    tree: Path = ROOT

    def service_env(self) -> dict[str, str]:
        return {
            **super().service_env(),
            "MEWS_NOTIFY_GROUP_WAIT_SECONDS": "0",
            "MEWS_NOTIFY_GROUP_INTERVAL_SECONDS": "0",
            "MEWS_SCORING_LAG_INTERVAL_SECONDS": "0.25",
            "MEWS_LOG_LEVEL": "WARNING",
        }

    def _spawn(self, name, args, env):
        assert self.log_dir is not None
        proc = spawn_service(self.tree, args, env, self.log_dir / f"{name}.log")
        self.processes[name] = proc
        return proc


def _created(answer: httpx.Response) -> dict:
    if answer.status_code != 201:
        raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}")
    return answer.json()


def provision(stack: Stack, url: str, materials: list[str]) -> str:
    """One organisation, one webhook channel, one subscription per material; the channel's secret."""
    with httpx.Client(base_url=stack.url("notify"), timeout=30) as api:
        org = _created(
            api.post(
                "/v1/organisations",
                headers={"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"},
                json={"name": "Bench end-to-end", "kind": "company", "clearance": "public"},
            )
        )
        auth = {"Authorization": f"Bearer {org['api_key']}"}
        channel = _created(
            api.post("/v1/channels", headers=auth, json={"kind": "webhook", "target": url, "mode": "immediate"})
        )
        for material in materials:
            _created(
                api.post(
                    "/v1/subscriptions",
                    headers=auth,
                    json={"material": material, "min_severity": "warning", "channel_ids": [channel["id"]]},
                )
            )
    return channel["secret"]


@dataclass
class Outcome:
    label: str
    expected: int
    latencies: list[float] = field(default_factory=list)
    arrived_in_run: int = 0
    arrived: int = 0
    duplicates: int = 0
    unexpected: int = 0
    bad_signatures: int = 0
    posts: int = 0
    peak_lag_gauge: float | None = None
    peak_lag_committed: int | None = None
    zero_lag_gauge_s: float | None = None
    zero_lag_committed_s: float | None = None
    offered_s: float = 0.0
    rejected_prices: int = 0
    exited: list[str] = field(default_factory=list)
    missing: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, status) -> transitions never sent
    stages: dict[str, list[float]] = field(default_factory=dict)  # stage -> seconds, one per arrived transition
    histograms: dict[str, tuple[float | None, float | None, int]] = field(default_factory=dict)  # notify's own

    def stage_lines(self) -> list[str]:
        """Where the time went, stage by stage: p50 and p99 of each over the arrived transitions."""
        lines = [
            f"    {name}: p50 {fmt(percentile(v, 50), '.3f', ' s')}, p99 {fmt(percentile(v, 99), '.3f', ' s')} "
            f"({len(v)} transitions)"
            for name, v in self.stages.items()
        ]
        lines += [
            f"    notify's {name} histogram: p50 <= {fmt(p50, 'g', ' s')}, p99 <= {fmt(p99, 'g', ' s')} "
            f"(bucket bounds; {n} observations)"
            for name, (p50, p99, n) in self.histograms.items()
        ]
        return lines

    def line(self) -> str:
        exits = f"; EXITED: {', '.join(self.exited)}" if self.exited else ""
        signed = f", {self.bad_signatures} bad signatures" if self.bad_signatures else ""
        worst = max(self.latencies, default=None)
        missing = ", ".join(f"{n} {rule} {status}" for (rule, status), n in sorted(self.missing.items()))
        return (
            f"{self.label}: latency of the arrived transitions p50 "
            f"{fmt(percentile(self.latencies, 50), '.3f', ' s')}, p99 "
            f"{fmt(percentile(self.latencies, 99), '.3f', ' s')} (max {fmt(worst, '.3f', ' s')}); "
            f"transitions {self.arrived_in_run}/{self.expected} within the offered {self.offered_s:.1f} s, "
            f"{self.arrived}/{self.expected} after draining{f' (missing: {missing})' if missing else ''}, "
            f"{self.duplicates} duplicates, {self.unexpected} "
            f"unexpected{signed}; {self.posts} webhook POSTs; scoring lag peak {fmt(self.peak_lag_gauge, ',.0f')} "
            f"(gauge) / {fmt(self.peak_lag_committed, ',.0f')} (committed offsets), back to 0 "
            f"{settled([self.zero_lag_gauge_s])} / {settled([self.zero_lag_committed_s])} after "
            f"the last price; {self.rejected_prices} prices not accepted{signed}{exits}"
        )


def settled(seconds: list[float | None]) -> str:
    """The median time lag took back to 0, or in how many runs it did not settle within the drain."""
    unsettled = sum(s is None for s in seconds)
    if unsettled:
        return f"not within the drain in {unsettled} of {len(seconds)}"
    return fmt(median_of(seconds), ".1f", " s")


def measure_stack(
    tree: Path,
    label: str,
    args,
    prices: list[Price],
    expected: list[Transition],
    materials: list[str],
    probe: str,
    receiver: Receiver,
    work: Path,
) -> Outcome:
    """One run of the whole stack under the offered load."""
    from shared import topics

    namespace = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    path = f"/e2e/{namespace}"
    state = work / namespace
    ports = Ports(ingest=_free_port(), scoring=_free_port(), notify=_free_port())
    out = Outcome(label, len(expected))
    with BenchStack(
        state_dir=state, kafka_bootstrap=args.bootstrap, namespace=namespace, ports=ports, tree=tree
    ) as stack:
        secret = provision(stack, receiver.url(path), [*materials, probe])
        headers = {"Authorization": f"Bearer {DEMO_INGEST_KEY}"}
        mark = receiver.count()
        # Warm-up: a 50 % jump of the probe material must come back as a webhook before the clock starts.
        warm = [Price(probe, 0, 300.0), Price(probe, 1, 450.0)]
        httpx.post(
            f"{stack.url('ingest')}/v1/prices", json={"items": [p.item() for p in warm]}, headers=headers, timeout=30
        ).raise_for_status()
        deadline = time.monotonic() + 120
        while not any(d.path == path for d in receiver.since(mark)):
            if time.monotonic() > deadline:
                raise RuntimeError("the warm-up price never came back as a webhook")
            dead = [n for n, p in stack.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited during warm-up")
            time.sleep(0.1)
        mark = receiver.count()
        lag = LagWatch(
            args.bootstrap,
            f"{namespace}.mews-scoring",
            topics.PRICES.qualified(namespace),
            topics.PRICES.partitions,
            f"{stack.url('scoring')}/metrics",
        )
        lag.start()
        hops = HopWatch(args.bootstrap, topics.PRICES.qualified(namespace), topics.BREACHES.qualified(namespace))
        hops.start()
        rejected = 0
        acked_at: dict[tuple[str, int], float] = {}

        async def drive() -> dict[tuple[str, int], float]:
            async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=headers, timeout=30) as http:

                async def send(batch: list[Price]) -> None:
                    nonlocal rejected
                    try:
                        answer = await http.post("/v1/prices", json={"items": [p.item() for p in batch]})
                        answered = time.time()
                        accepted = answer.json().get("accepted", 0) if answer.status_code == 202 else 0
                        for p in batch:
                            acked_at[(p.material, p.day)] = answered
                    except (httpx.HTTPError, ValueError):
                        accepted = 0
                    rejected += len(batch) - accepted

                return await offer(send, prices, args.rate)

        try:
            started = time.time()
            sent_at = asyncio.run(drive())
            ended = time.time()
            out.offered_s = ended - started
            out.rejected_prices = rejected
            drain(receiver, mark, path, set(expected), stack, args.drain, args.stall)
            time.sleep(1.0)  # late duplicates and the lag's last samples
            with contextlib.suppress(httpx.HTTPError):
                notify_metrics = httpx.get(f"{stack.url('notify')}/metrics", timeout=5).text
                out.histograms = {
                    label: histogram_quantiles(notify_metrics, name) for label, name in HISTOGRAMS.items()
                }
        finally:
            lag.stop()
            hops.stop()
        out.exited = [f"{n} (exit {p.returncode})" for n, p in stack.processes.items() if p.poll() is not None]
    wanted = set(expected)
    deliveries = [d for d in receiver.since(mark) if d.path == path]
    out.posts = len(deliveries)
    out.bad_signatures = _bad_signatures(deliveries, secret)
    first_arrival: dict[Transition, float] = {}
    seen: dict[Transition, int] = defaultdict(int)
    for d in deliveries:
        for key in _transitions(d.body):
            seen[key] += 1
            first_arrival.setdefault(key, d.arrived)
    out.unexpected = sum(n for k, n in seen.items() if k not in wanted)
    out.duplicates = sum(n - 1 for k, n in seen.items() if k in wanted)
    out.arrived = sum(1 for k in seen if k in wanted)
    for _, rule, status, _ in wanted - set(seen):
        out.missing[(rule, status)] = out.missing.get((rule, status), 0) + 1
    out.arrived_in_run = sum(1 for k, t in first_arrival.items() if k in wanted and t <= ended)
    day_of = {p.observed_at.isoformat(): p.day for p in prices}
    enqueued = enqueued_at(state / "notify.db")
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for key, arrived in first_arrival.items():
        if key not in wanted:
            continue
        material, _, _, observed = key
        sent = sent_at.get((material, day_of[observed]))
        if sent is None:
            continue
        out.latencies.append(arrived - sent)
        # Each hop where both of its ends were seen; the clocks are this machine's one clock.
        ack, priced = acked_at.get((material, day_of[observed])), hops.price_at.get((material, observed))
        raised, dispatched = hops.breach_at.get(key), enqueued.get(key)
        for name, start, end in (
            (STAGES[0], sent, ack),
            (STAGES[1], sent, priced),
            (STAGES[2], priced, raised),
            (STAGES[3], raised, dispatched),
            (STAGES[4], dispatched, arrived),
        ):
            if start is not None and end is not None:
                stages[name].append(end - start)
    out.stages = stages
    out.peak_lag_gauge = max((v for _, v in lag.gauge), default=None)
    out.peak_lag_committed = max((v for _, v in lag.committed), default=None)
    out.zero_lag_gauge_s = back_to_zero(lag.gauge, ended)
    out.zero_lag_committed_s = back_to_zero(lag.committed, ended)  # type: ignore[arg-type]
    return out


STAGES = (
    "ingest ack (POST -> 202)",
    "ingest publish (POST -> price on Kafka)",
    "scoring (price on Kafka -> breach on Kafka)",
    "notify consume (breach on Kafka -> dispatch begins)",
    "notify dispatch, outbox claim, POST (dispatch begins -> webhook arrives)",
)


def drain(
    receiver: Receiver, mark: int, path: str, wanted: set[Transition], stack: Stack, within: float, stall: float
) -> None:
    """Wait until every wanted transition arrived, `within` seconds passed, `stall` passed without news, or a
    service exited."""
    got: set[Transition] = set()
    cursor, deadline, last_progress = mark, time.monotonic() + within, time.monotonic()
    while time.monotonic() < deadline and not wanted <= got:
        fresh = receiver.since(cursor)
        cursor += len(fresh)
        before = len(got)
        got.update(k for d in fresh if d.path == path for k in _transitions(d.body))
        if len(got) != before:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > stall:
            return
        if any(p.poll() is not None for p in stack.processes.values()):
            return
        time.sleep(0.2)


def _transitions(body: bytes) -> list[Transition]:
    try:
        alerts = json.loads(body).get("alerts", [])
    except ValueError:
        return []
    return [
        transition_key(a["material"], a["rule"], a["status"], a["observed_at"]) for a in alerts if a.get("observed_at")
    ]


def _bad_signatures(deliveries, secret: str) -> int:
    from standardwebhooks import Webhook

    bad = 0
    for d in deliveries:
        try:
            Webhook(secret).verify(d.body, d.headers)
        except Exception:  # noqa: BLE001 - any failure to verify is a bad signature
            bad += 1
    return bad


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(args: argparse.Namespace) -> None:
    """Run every contender on the broker in `args.bootstrap` and print the figures."""
    materials, probe = materials_from_catalog(args.materials)
    prices = price_schedule(materials, int(args.rate * args.duration))
    expected = expected_transitions(prices)
    print(
        f"end to end: {len(prices):,} prices offered at {args.rate:g}/s for {args.duration:g} s over "
        f"{len(materials)} materials ({len(prices) // len(materials)} days each); {len(expected):,} breach "
        f"transitions expected (backtest replay of the same prices); broker {args.bootstrap}; group wait 0, "
        f"group interval 0; {args.runs} run(s)",
        flush=True,
    )
    revs: list[str | None] = [args.against, None] if args.against else [None]
    anchors: list[list[float]] = []
    results: dict[str, list[Outcome]] = defaultdict(list)
    with Receiver() as receiver, tempfile.TemporaryDirectory(prefix="mews-bench-e2e-") as tmp:
        for run in range(args.runs):
            latencies = asyncio.run(anchor_latencies(args.bootstrap, prices, args.rate))
            anchors.append(latencies)
            print(
                f"run {run + 1}: bare aiokafka producer -> consumer: p50 "
                f"{fmt(percentile(latencies, 50), '.4f', ' s')}, p99 {fmt(percentile(latencies, 99), '.4f', ' s')}, "
                f"{len(latencies):,} events",
                flush=True,
            )
            for rev in revs:
                label = f"mews {describe_tree(rev)}"
                with code_tree(rev) as tree:
                    try:
                        outcome = measure_stack(
                            tree, label, args, prices, expected, materials, probe, receiver, Path(tmp)
                        )
                    except Exception as exc:  # noqa: BLE001 - a run that could not start is reported
                        print(f"run {run + 1}: {label}: FAILED TO RUN: {exc}", flush=True)
                        continue
                results[label].append(outcome)
                print(f"run {run + 1}: {outcome.line()}", flush=True)
                print("\n".join(outcome.stage_lines()), flush=True)
    anchor_p50 = median_of(percentile(a, 50) for a in anchors)
    anchor_p99 = median_of(percentile(a, 99) for a in anchors)
    print("summary (medians over runs):")
    print(
        f"  bare aiokafka producer -> consumer: p50 {fmt(anchor_p50, '.4f', ' s')}, p99 {fmt(anchor_p99, '.4f', ' s')}"
    )
    for label, runs in results.items():
        p50 = median_of(percentile(r.latencies, 50) for r in runs)
        p99 = median_of(percentile(r.latencies, 99) for r in runs)
        ratio = (
            f"; mews/bare: {p50 / anchor_p50:,.1f}x p50, {p99 / anchor_p99:,.1f}x p99"
            if p50 and p99 and anchor_p50 and anchor_p99
            else ""
        )
        print(
            f"  {label}: p50 {fmt(p50, '.3f', ' s')}, p99 {fmt(p99, '.3f', ' s')}, arrived within the run "
            f"{fmt(median_of(r.arrived_in_run for r in runs), ',.0f')}/{len(expected)}, after draining "
            f"{fmt(median_of(r.arrived for r in runs), ',.0f')}/{len(expected)}, peak lag "
            f"{fmt(median_of(r.peak_lag_gauge for r in runs), ',.0f')} (gauge) / "
            f"{fmt(median_of(r.peak_lag_committed for r in runs), ',.0f')} (committed), back to 0 "
            f"{settled([r.zero_lag_gauge_s for r in runs])} / "
            f"{settled([r.zero_lag_committed_s for r in runs])}{ratio}",
            flush=True,
        )
        for name in STAGES:
            print(
                f"    {name}: p50 {fmt(median_of(percentile(r.stages.get(name, []), 50) for r in runs), '.3f', ' s')}"
                f", p99 {fmt(median_of(percentile(r.stages.get(name, []), 99) for r in runs), '.3f', ' s')}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="prices offered per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of offered load")
    parser.add_argument("--materials", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1, help="runs of each; medians are printed")
    parser.add_argument("--against", metavar="REV", help="also measure the services as of this commit, first")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for stragglers after the load")
    parser.add_argument("--stall", type=float, default=15.0, help="stop draining after this long without news")
    args = parser.parse_args()
    with kafka_broker() as bootstrap:
        args.bootstrap = bootstrap
        measure(args)


if __name__ == "__main__":
    main()
