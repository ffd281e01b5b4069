"""Scoring workers as real processes (`mews scoring run`), and reading what they wrote, on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics as declared
from shared.events import (
    Event,
    LeadTimeQuoted,
    NewsReported,
    PriceObserved,
    StockReported,
    TradeFlowReported,
    decode,
)
from shared.kafka import EventProducer, event_id_for
from tests.conftest import ROOT, free_port
from tests.eventually import eventually_blocking

READ_KEY = "scoring-test-read-key"
PUBLIC_KEY = "scoring-test-public-key"
DAY0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Worker:
    """One `mews scoring run` process with its own port and log file."""

    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        workdir: Path,
        name: str,
        env: dict[str, str] | None = None,
        preload: str | None = None,
    ) -> None:
        self.port = free_port()
        self.name = name
        self.log_path = workdir / f"{name}.log"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MEWS_TOPIC_NAMESPACE": namespace,
            "MEWS_ENVIRONMENT": "test",
            "MEWS_SCORING_PORT": str(self.port),
            "MEWS_SCORING_DATA_DIR": str(workdir / f"{name}-data"),
            "MEWS_SCORING_API_KEYS": f"{sha256_hex(READ_KEY)}:government,{sha256_hex(PUBLIC_KEY)}",
            "MEWS_SCORING_LAG_INTERVAL_SECONDS": "1",
            "MEWS_SCORING_COMMIT_INTERVAL_SECONDS": "0.5",
            "MEWS_SCORING_RECOVERY_CHECK_SECONDS": "1",
            # A snapshot per applied input, so tests can count applied inputs by their snapshots.
            "MEWS_SCORING_SNAPSHOT_INTERVAL_SECONDS": "0",
            **(env or {}),
        }
        program = "from services.cli import main; main()"
        if preload:  # a module of the tests imported first, to put a fault into the worker
            program = f"import {preload}; {program}"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", program, "scoring", "run"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 40) -> str:
        """The log's warnings and errors, then its last lines; aiokafka's heartbeat lines left out of both (a worker
        stuck in a rebalance writes one every 3 s, and they hid what it logged before)."""
        kept = [line for line in self.log_path.read_text(errors="replace").splitlines() if "Heartbeat" not in line]
        notable = [line for line in kept if '"level": "warning"' in line or '"level": "error"' in line]
        return "\n".join(["warnings and errors:", *notable[-lines:], "last lines:", *kept[-lines:]])

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll /readyz until 200; fail with the log if the process dies or the deadline passes."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            eventually_blocking(ready, within=timeout, what=f"{self.name} ready", every=0.2)
        except AssertionError:
            pytest.fail(f"{self.name} not ready in {timeout}s:\n{self.tail()}")

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0 when absent)."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=5).text
        except httpx.ConnectError as exc:
            # A ready worker refuses only once its read API has stopped, that is while its process shuts down:
            # say so with its log (the exit status, once it has one), not with the refused connection alone.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            pytest.fail(
                f"{self.name} refused {self.url}/metrics ({exc}); exit status {self.proc.poll()}:\n{self.tail()}"
            )
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and line.split(" ")[0] != name:
                continue
            series, _, value = line.rpartition(" ")
            got = series[len(name) :].strip("{}")
            if all(part in got.split(",") for part in wanted.split(",") if part):
                total += float(value)
        return total

    def kill(self) -> int:
        """SIGKILL: the process gets no chance to persist or commit anything more."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator would; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"{self.name} ignored SIGTERM for {timeout}s:\n{self.tail()}")
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start scoring workers for a namespace; every one still running is stopped at the end."""
    started: list[Worker] = []

    def start(
        namespace: str,
        name: str = "worker",
        ready: bool = True,
        env: dict[str, str] | None = None,
        preload: str | None = None,
    ) -> Worker:
        worker = Worker(kafka_bootstrap, namespace, tmp_path, f"{name}-{len(started)}", env, preload)
        started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


# Twelve materials: each of the six partitions of the input topics holds at least one of them.
MATERIALS = [
    "gallium",
    "germanium",
    "antimony",
    "graphite",
    "lithium",
    "cobalt",
    "nickel",
    "tungsten",
    "magnesium",
    "vanadium",
    "indium",
    "tin",
]


def price(material: str, day: float, value: float, **extra: object) -> PriceObserved:
    """A daily price `day` days after DAY0."""
    return PriceObserved(
        material=material,
        source="test-exchange",
        observed_at=DAY0 + timedelta(days=day),
        price=value,
        currency="USD",
        unit="kg",
        series="spot",
        **extra,
    )


def leadtime(material: str, day: float, days: float, **extra: object) -> LeadTimeQuoted:
    return LeadTimeQuoted(
        material=material, source="test-broker", quoted_at=DAY0 + timedelta(days=day), lead_time_days=days, **extra
    )


async def produce(bootstrap: str, namespace: str, events: list[Event], at_once: bool = False) -> list[str]:
    """Publish inputs to their topics as ingest does (deterministic ids); the CloudEvents ids.

    One by one, each acknowledged before the next; `at_once` hands them over as one batch, as ingest publishes a
    request, so a worker fetches them together."""
    topic_of = {
        PriceObserved: declared.PRICES,
        LeadTimeQuoted: declared.LEADTIMES,
        TradeFlowReported: declared.TRADE,
        StockReported: declared.STOCKS,
        NewsReported: declared.NEWS,
    }
    producer = EventProducer(bootstrap, source="tests/scoring", namespace=namespace)
    await producer.start()
    try:
        ids = [event_id_for(event.dedup_key()) for event in events]  # type: ignore[attr-defined]
        if at_once:
            sends = [(topic_of[type(e)], e, None, i) for e, i in zip(events, ids, strict=True)]
            assert all(await producer.send_acknowledged(sends, within=30))
        else:
            for event, event_id in zip(events, ids, strict=True):
                await producer.send(topic_of[type(event)], event, event_id=event_id)
    finally:
        await producer.stop()
    return ids


async def produce_raw(bootstrap: str, namespace: str, topic: declared.Topic, value: bytes, key: bytes | None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic.qualified(namespace), value, key=key)
    finally:
        await producer.stop()


async def collect(
    bootstrap: str,
    namespace: str,
    topic: declared.Topic,
    done: Callable[[list[tuple[dict, Event]]], bool],
    wait: float = 30,
) -> list[tuple[dict, Event]]:
    """Read a topic from the beginning (all partitions, no group) until `done(messages)` or the deadline."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[tuple[dict, Event]] = []
    try:
        name = topic.qualified(namespace)
        partitions = [TopicPartition(name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for messages in batches.values():
                got += [decode(m.value) for m in messages]
            if done(got):
                return got
        return got
    finally:
        await consumer.stop()


def of_rule(messages: list[tuple[dict, Event]], rule: str) -> list:
    """Breach events of one rule, in order."""
    return [e for _, e in messages if getattr(e, "rule", None) == rule]


def run(coro):  # the workers are subprocesses; tests drive the broker from a short-lived loop
    return asyncio.run(coro)
