"""Crisis fan-out: B breaches to M organisations through the notify service, against Prometheus Alertmanager.

M organisations are created through notify's API (bootstrap token), each with one webhook channel to one loopback
receiver and a subscription to the material every breach is about; B `BreachRaised` events are then produced onto
`mews.breaches.v1` of a fresh namespace, so B x M alert-organisation pairs must arrive. The notify service runs alone
(`mews notify run`, group wait and group interval 0) as a subprocess, on SQLite and on PostgreSQL. The anchor, in the
same run and to the same receiver: Alertmanager with M webhook receivers on `continue: true` routes, group_wait 0,
fed the same B alerts through POST /api/v2/alerts. Every wait is bounded: a notify process that exits is reported
with the pairs delivered until then.

Printed for each: time from the first breach produced (or alert posted) to the last pair, pairs/s, POSTs, first
delivery latency, whether every pair arrived exactly once (and every mews signature verified), and mews/Alertmanager.
`--against REV` measures notify as of commit REV (git archive into a temporary folder) in the same run.

Run: .venv/bin/python bench/notify_fanout_bench.py [-B 200] [-M 50] [--db sqlite|postgresql|both] [--runs 3]
     [--against 3389b4b]; KAFKA_BOOTSTRAP_SERVERS names the broker (unset: the bench starts
     one of its own with deploy/local/kafka.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import alertmanager  # noqa: E402
from bench.harness.broker import kafka_broker  # noqa: E402
from bench.harness.figures import PairCount, count_pairs, fmt, histogram_growth, histogram_totals, median_of  # noqa: E402
from bench.harness.postgres import fresh_database, postgres_server  # noqa: E402
from bench.harness.receiver import Delivery, Receiver  # noqa: E402
from bench.harness.trees import code_tree, describe_tree, last_words, spawn_service, stop_service, tail, wait_ready  # noqa: E402

BOOTSTRAP_TOKEN = "bench-bootstrap-token-0123456789abcdef"  # noqa: S105 - a throwaway local service
MATERIAL = "gallium"  # every breach is about it and every organisation subscribes to it
PROBE_MATERIAL = "germanium"  # one probe breach proves the consumer is assigned before the clock starts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_breaches(tag: str, count: int, material: str, now: datetime):
    """`count` distinct firing breaches of one material (fingerprints `<tag>-<i>`)."""
    from shared.events import BreachRaised, BreachStatus, Evidence, Severity

    return [
        BreachRaised(
            fingerprint=f"{tag}-{i:05d}",
            material=material,
            rule=f"bench-rule-{i:05d}",
            indicator="price_change_1d_pct",
            severity=Severity.CRITICAL if i % 5 == 0 else Severity.WARNING,
            status=BreachStatus.FIRING,
            value=42.0,
            warning_threshold=20.0,
            critical_threshold=40.0,
            clear_threshold=10.0,
            threshold=20.0,
            starts_at=now,
            observed_at=now,
            summary=f"{material} bench breach {i}",
            evidence=[Evidence(id=f"{tag}-ev-{i}", source="bench", kind="price", time=now, value=142.0)],
        )
        for i in range(count)
    ]


def alertmanager_alerts(breaches) -> list[dict]:
    """The same breaches as Alertmanager alerts (POST /api/v2/alerts)."""
    return [
        {
            "labels": {
                "alertname": b.rule,
                "fingerprint": b.fingerprint,
                "material": b.material,
                "severity": str(b.severity),
            },
            "annotations": {"summary": b.summary},
            "startsAt": b.starts_at.isoformat(),
            "endsAt": (b.starts_at + timedelta(hours=1)).isoformat(),
        }
        for b in breaches
    ]


async def produce(bootstrap: str, namespace: str, breaches) -> None:
    """Put the breaches onto the namespace's breaches topic, all sends in flight at once, acknowledged by all."""
    from aiokafka import AIOKafkaProducer

    from shared import topics
    from shared.events import encode

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        topic = topics.BREACHES.qualified(namespace)
        sent = [
            await producer.send(topic, encode(b, source="mews/scoring"), key=b.fingerprint.encode()) for b in breaches
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


@dataclass
class Outcome:
    """One measured run of one contender."""

    label: str
    pairs: PairCount
    posts: int = 0
    first_s: float | None = None  # first delivery after the clock started
    last_s: float | None = None  # last new pair after the clock started
    bad_signatures: int = 0
    exited: str | None = None  # how the process ended, if it did before the run was over
    notes: list[str] = field(default_factory=list)
    own: dict[str, tuple[float, float]] = field(default_factory=dict)  # notify's histograms: (count, sum) gained

    @property
    def pairs_per_s(self) -> float | None:
        return self.pairs.delivered / self.last_s if self.last_s else None

    def line(self) -> str:
        p = self.pairs
        once = (
            "every pair exactly once"
            if p.exactly_once
            else (f"NOT exactly once: {p.missing} missing, {p.duplicates} duplicates, {p.unexpected} unexpected")
        )
        signed = f", {self.bad_signatures} bad signatures" if self.bad_signatures else ""
        ended = f"; PROCESS EXITED: {self.exited}" if self.exited else ""
        return (
            f"{self.label}: {p.delivered:,}/{p.expected:,} pairs, last pair {fmt(self.last_s, '.2f', ' s')}, "
            f"{fmt(self.pairs_per_s, ',.0f')} pairs/s, {self.posts:,} POSTs, first delivery "
            f"{fmt(self.first_s, '.3f', ' s')}; {once}{signed}{ended}"
        )


class PairWatch:
    """Follows the receiver from a mark and counts the pairs of one contender as they arrive."""

    def __init__(self, receiver: Receiver, prefix: str, pairs_of) -> None:
        self.receiver, self.prefix, self.pairs_of = receiver, prefix, pairs_of
        self.cursor = receiver.count()  # deliveries before this are someone else's
        self.deliveries: list[Delivery] = []
        self.arrived: list[tuple[str, str]] = []
        self.distinct: set[tuple[str, str]] = set()
        self.last_new: float | None = None

    def poll(self) -> None:
        fresh = self.receiver.since(self.cursor)
        self.cursor += len(fresh)
        for d in fresh:
            if not d.path.startswith(self.prefix):
                continue
            self.deliveries.append(d)
            for pair in self.pairs_of(d):
                self.arrived.append(pair)
                if pair not in self.distinct:
                    self.distinct.add(pair)
                    self.last_new = d.arrived

    def wait(self, expected: int, deadline_s: float, stall_s: float, alive=lambda: True) -> str | None:
        """Until every pair came, the deadline passed, nothing new came for `stall_s`, or `alive()` turned false."""
        start = time.monotonic()
        last_progress, seen = start, 0
        while True:
            self.poll()
            now = time.monotonic()
            if len(self.distinct) != seen:
                seen, last_progress = len(self.distinct), now
            if seen >= expected:
                time.sleep(0.5)  # a duplicate would show up now
                self.poll()
                return None
            if not alive():
                time.sleep(0.5)
                self.poll()
                return "exited"
            if now - start > deadline_s:
                return f"deadline of {deadline_s:.0f} s passed"
            if now - last_progress > stall_s:
                return f"no new pair for {stall_s:.0f} s"
            time.sleep(0.02)


def _mews_pairs(d: Delivery) -> list[tuple[str, str]]:
    try:
        body = json.loads(d.body)
    except ValueError:
        return []
    return [(d.path, a["fingerprint"]) for a in body.get("alerts", []) if a.get("status") == "firing"]


def _bad_signatures(deliveries: list[Delivery], secrets: dict[str, str]) -> int:
    from standardwebhooks import Webhook

    bad = 0
    for d in deliveries:
        try:
            Webhook(secrets[d.path]).verify(d.body, d.headers)
        except Exception:  # noqa: BLE001 - any failure to verify is a bad signature
            bad += 1
    return bad


def _created(answer: httpx.Response) -> dict:
    if answer.status_code != 201:
        raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}")
    return answer.json()


def provision(api: str, receiver: Receiver, prefix: str, organisations: int) -> dict[str, str]:
    """Organisations with one webhook channel and one subscription each, made through the API; path -> secret."""
    secrets: dict[str, str] = {}
    with httpx.Client(base_url=api, timeout=30) as http:
        for i in range(-1, organisations):  # -1: the probe organisation
            org = _created(
                http.post(
                    "/v1/organisations",
                    headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"},
                    json={"name": f"Bench org {i}", "kind": "company", "clearance": "public"},
                )
            )
            auth = {"Authorization": f"Bearer {org['api_key']}"}
            path = f"{prefix}probe" if i < 0 else f"{prefix}{i}"
            channel = _created(
                http.post(
                    "/v1/channels",
                    headers=auth,
                    json={"kind": "webhook", "target": receiver.url(path), "mode": "immediate"},
                )
            )
            _created(
                http.post(
                    "/v1/subscriptions",
                    headers=auth,
                    json={
                        "material": PROBE_MATERIAL if i < 0 else MATERIAL,
                        "min_severity": "warning",
                        "channel_ids": [channel["id"]],
                    },
                )
            )
            secrets[path] = channel["secret"]
    return secrets


def measure_mews(tree: Path, label: str, database_url: str, args, receiver: Receiver, work: Path) -> Outcome:
    """One run of the notify service alone on this database; its outcome."""
    from shared.kafka import ensure_topics

    tag = f"f{uuid.uuid4().hex[:8]}"
    namespace = f"bench-fanout-{tag}"
    prefix = f"/mews/{tag}/"
    port = free_port()
    log = work / f"notify-{tag}.log"
    asyncio.run(ensure_topics(args.bootstrap, namespace))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
        "MEWS_TOPIC_NAMESPACE": namespace,
        "MEWS_ENVIRONMENT": "development",
        "MEWS_DATABASE_URL": database_url,
        "MEWS_NOTIFY_PORT": str(port),
        "MEWS_BOOTSTRAP_ADMIN_TOKEN": BOOTSTRAP_TOKEN,
        "MEWS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "MEWS_GROUP_WAIT_SECONDS": "0",
        "MEWS_GROUP_INTERVAL_SECONDS": "0",
        "MEWS_LOG_LEVEL": "WARNING",
        "MEWS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    proc = spawn_service(tree, ["notify", "run"], env, log)
    expected = {(f"{prefix}{o}", f"{tag}-{i:05d}") for o in range(args.organisations) for i in range(args.breaches)}
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
        secrets = provision(f"http://127.0.0.1:{port}", receiver, prefix, args.organisations)
        probe = PairWatch(receiver, f"{prefix}probe", _mews_pairs)
        asyncio.run(
            produce(args.bootstrap, namespace, make_breaches(f"{tag}-probe", 1, PROBE_MATERIAL, datetime.now(UTC)))
        )
        if probe.wait(1, deadline_s=90, stall_s=90, alive=lambda: proc.poll() is None) is not None:
            raise RuntimeError(f"the probe breach never arrived (notify consumer not assigned?):\n{tail(log)}")
        watch = PairWatch(receiver, prefix, lambda d: [] if d.path.endswith("probe") else _mews_pairs(d))
        metrics_before = scrape(port)
        breaches = make_breaches(tag, args.breaches, MATERIAL, datetime.now(UTC))
        t0 = time.time()
        asyncio.run(produce(args.bootstrap, namespace, breaches))
        exit_seen: list[float] = []

        def alive() -> bool:
            if proc.poll() is None:
                return True
            exit_seen.append(time.time())
            return False

        ended = watch.wait(len(expected), args.deadline, args.stall, alive=alive)
        exited = None
        if proc.poll() is not None:
            when = f" {(exit_seen[0] if exit_seen else time.time()) - t0:.1f} s after the first breach"
            exited = f"exit code {proc.returncode}{when}: {last_words(log)}"
        out = Outcome(
            label,
            count_pairs(watch.arrived, expected),
            posts=len(watch.deliveries),
            first_s=(min(d.arrived for d in watch.deliveries) - t0) if watch.deliveries else None,
            last_s=(watch.last_new - t0) if watch.last_new else None,
            bad_signatures=_bad_signatures(watch.deliveries, secrets),
            exited=exited,
        )
        if ended and ended != "exited":
            out.notes.append(f"stopped waiting: {ended}")
        if proc.poll() is None:
            metrics_after = scrape(port)
            out.own = histogram_growth(metrics_before, metrics_after, "mews_notify_")
            if "mews_notify_process_cpu" in metrics_before and "mews_notify_process_cpu" in metrics_after:
                out.own["mews_notify_process_cpu"] = (
                    1.0,
                    metrics_after["mews_notify_process_cpu"][1] - metrics_before["mews_notify_process_cpu"][1],
                )
        return out
    finally:
        stop_service(proc)


def scrape(port: int) -> dict[str, tuple[float, float]]:
    """notify's histograms now, and its CPU seconds as `mews_notify_process_cpu` (empty when it does not answer)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    totals = histogram_totals(text)
    cpu = [float(line.split()[1]) for line in text.splitlines() if line.startswith("process_cpu_seconds_total ")]
    if cpu:
        totals["mews_notify_process_cpu"] = (1.0, cpu[0])
    return totals


def own_timings(own: dict[str, tuple[float, float]]) -> str:
    """Where notify's time went during the run, by its own histograms: observations, total and mean of each."""
    return "; ".join(
        f"{key.removeprefix('mews_notify_')} {count:,.0f}x {total:.3f} s ({1000 * total / count:.1f} ms)"
        for key, (count, total) in sorted(own.items())
    )


def measure_alertmanager(binary: str, args, receiver: Receiver) -> Outcome:
    """One run of Alertmanager with the same fan-out; its outcome."""
    tag = f"a{uuid.uuid4().hex[:8]}"
    prefix = f"/am/{tag}/"
    config = alertmanager.fanout_config([(f"org-{o}", receiver.url(f"{prefix}{o}")) for o in range(args.organisations)])
    breaches = make_breaches(tag, args.breaches, MATERIAL, datetime.now(UTC))
    alerts = alertmanager_alerts(breaches)
    expected = {(f"{prefix}{o}", b.fingerprint) for o in range(args.organisations) for b in breaches}

    def pairs_of(d: Delivery) -> list[tuple[str, str]]:
        return [(d.path, a["labels"]["fingerprint"]) for a in json.loads(d.body)["alerts"]]

    with alertmanager.running(binary, config, free_port()) as base:
        watch = PairWatch(receiver, prefix, pairs_of)
        t0 = time.time()
        answer = httpx.post(f"{base}/api/v2/alerts", json=alerts, timeout=30)
        answer.raise_for_status()
        ended = watch.wait(len(expected), args.deadline, args.stall)
    out = Outcome(
        "Alertmanager",
        count_pairs(watch.arrived, expected),
        posts=len(watch.deliveries),
        first_s=(min(d.arrived for d in watch.deliveries) - t0) if watch.deliveries else None,
        last_s=(watch.last_new - t0) if watch.last_new else None,
    )
    if ended:
        out.notes.append(f"stopped waiting: {ended}")
    return out


def summarise(label: str, runs: list[Outcome]) -> dict:
    """Medians: time and rate over the runs that delivered every pair (a crashed run has no rate), the rest over all."""
    complete = [r for r in runs if r.pairs.delivered == r.pairs.expected]
    return {
        "label": label,
        "runs": len(runs),
        "complete": len(complete),
        "last_s": median_of(r.last_s for r in complete),
        "pairs_per_s": median_of(r.pairs_per_s for r in complete),
        "first_s": median_of(r.first_s for r in runs),
        "posts": median_of(r.posts for r in runs),
        "delivered": median_of(r.pairs.delivered for r in runs),
        "expected": runs[0].pairs.expected,
        "exactly_once": sum(r.pairs.exactly_once and not r.bad_signatures for r in runs),
        "exited": sum(r.exited is not None for r in runs),
    }


def print_summary(s: dict, anchor: dict | None) -> None:
    ratio = ""
    if anchor and s is not anchor and s["pairs_per_s"] and anchor["pairs_per_s"]:
        ratio = (
            f"; mews/Alertmanager (complete runs): {s['pairs_per_s'] / anchor['pairs_per_s']:.2f}x pairs/s, "
            f"{s['last_s'] / anchor['last_s']:.2f}x the time"
        )
    exits = f"; the process exited in {s['exited']} of {s['runs']}" if s["exited"] else ""
    print(
        f"  {s['label']:<44} {s['complete']} of {s['runs']} runs delivered every pair; their medians: last pair "
        f"{fmt(s['last_s'], '.2f', ' s')}, {fmt(s['pairs_per_s'], ',.0f')} pairs/s. Medians of all runs: "
        f"{fmt(s['posts'], ',.0f')} POSTs, first delivery {fmt(s['first_s'], '.3f', ' s')}, delivered "
        f"{fmt(s['delivered'], ',.0f')}/{s['expected']:,}; exactly once in {s['exactly_once']} of {s['runs']}"
        f"{exits}{ratio}",
        flush=True,
    )


def measure(args: argparse.Namespace) -> None:
    """Run Alertmanager and notify (each code tree, each database) on `args.bootstrap`; print the figures."""
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    revs: list[str | None] = [args.against, None] if args.against else [None]

    binary = alertmanager.find_or_install()
    print(
        f"fan-out: B={args.breaches} breaches x M={args.organisations} organisations = "
        f"{args.breaches * args.organisations:,} pairs; broker {args.bootstrap}; group wait 0, group interval 0; "
        f"anchor {alertmanager.version(binary)}; {args.runs} run(s) each",
        flush=True,
    )
    results: dict[str, list[Outcome]] = {}
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(Receiver())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mews-bench-fanout-")))
        pg_url = stack.enter_context(postgres_server()) if "postgresql" in databases else None
        roots = [(rev, stack.enter_context(code_tree(rev))) for rev in revs]
        for run in range(args.runs):
            outcome = measure_alertmanager(binary, args, receiver)
            results.setdefault("Alertmanager", []).append(outcome)
            print(f"run {run + 1}: {outcome.line()}", flush=True)
            for rev, root in roots:
                for db in databases:
                    label = f"mews {describe_tree(rev)} on {db}"
                    url = (
                        f"sqlite:///{work / uuid.uuid4().hex}.db"
                        if pg_url is None or db == "sqlite"
                        else (fresh_database(pg_url))
                    )
                    try:
                        outcome = measure_mews(root, label, url, args, receiver, work)
                    except Exception as exc:  # noqa: BLE001 - a run that could not start is reported
                        print(f"run {run + 1}: {label}: FAILED TO RUN: {exc}", flush=True)
                        continue
                    results.setdefault(label, []).append(outcome)
                    notes = f" ({'; '.join(outcome.notes)})" if outcome.notes else ""
                    print(f"run {run + 1}: {outcome.line()}{notes}", flush=True)
                    if outcome.own:
                        print(f"  notify's own timings in the run: {own_timings(outcome.own)}", flush=True)
    print("summary:")
    summaries = {label: summarise(label, runs) for label, runs in results.items()}
    anchor = summaries.get("Alertmanager")
    for s in summaries.values():
        print_summary(s, anchor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-B", "--breaches", type=int, default=200)
    parser.add_argument("-M", "--organisations", type=int, default=50)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3, help="runs of each contender; medians are printed")
    parser.add_argument("--against", metavar="REV", help="also measure notify as of this commit (e.g. 3389b4b)")
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds a run may take at most")
    parser.add_argument("--stall", type=float, default=30.0, help="give up after this long without a new pair")
    args = parser.parse_args()
    with kafka_broker() as bootstrap:
        args.bootstrap = bootstrap
        measure(args)


if __name__ == "__main__":
    main()
