"""Benchmarks of the notifier's alert path; prints medians.

1. Matching: subscription-index lookups per second against a naive scan of every subscription.
2. Pipeline: alerts per second through the pure stages (gate, inhibit, silence, route, dedup, group).
3. Dispatch: breaches per second into alert rows and outbox notifications on a SQLite file.

Run: .venv/bin/python bench/notify_bench.py [--organisations 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.notify.matching import SubscriptionIndex, SubscriptionSpec, scan_subscriptions  # noqa: E402
from services.notify.pipeline import (  # noqa: E402
    Alert,
    PipelineContext,
    Timing,
    classification_gate,
    deduplicate,
    group,
    inhibit,
    route,
    run_pipeline,
    silence,
)
from services.notify.pipeline.alert import ChannelRoute  # noqa: E402
from shared.events import BreachRaised, BreachStatus, Classification, Severity  # noqa: E402

MATERIALS = [f"material-{i}" for i in range(60)]


def make_specs(organisations: int, rng: random.Random) -> list[SubscriptionSpec]:
    """Per organisation: two direct subscriptions and one product with an eight-line BOM."""
    specs = []
    for o in range(organisations):
        org = f"org-{o}"
        for s in range(2):
            specs.append(
                SubscriptionSpec(
                    f"{org}-m{s}", org, rng.choice(list(Severity)), (f"{org}-hook",), material=rng.choice(MATERIALS)
                )
            )
        bom = tuple((f"component-{c}", rng.choice(MATERIALS)) for c in range(8))
        specs.append(
            SubscriptionSpec(f"{org}-p", org, Severity.WARNING, (f"{org}-mail",), product_name=f"product-{o}", bom=bom)
        )
    return specs


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _cold_lookups(specs: list[SubscriptionSpec], keys: list[tuple[str, Severity]]) -> float:
    """Seconds for the first lookup of every key on a fresh index (the merge is paid here)."""
    index = SubscriptionIndex(specs)
    start = time.perf_counter()
    for m, sv in keys:
        index.lookup(m, sv)
    return time.perf_counter() - start


def bench_matching(organisations: int, repeats: int, rng: random.Random) -> None:
    specs = make_specs(organisations, rng)
    index = SubscriptionIndex(specs)
    queries = [(rng.choice(MATERIALS), rng.choice(list(Severity))) for _ in range(2000)]
    scan_queries = queries[:100]
    index_s = timed(lambda: [index.lookup(m, s) for m, s in queries], repeats)
    scan_s = timed(lambda: [scan_subscriptions(specs, m, s) for m, s in scan_queries], repeats)
    cold = [(m, sev) for m in MATERIALS for sev in Severity]
    cold_s = [_cold_lookups(specs, cold) for _ in range(repeats)]
    index_rate = len(queries) / statistics.median(index_s)
    scan_rate = len(scan_queries) / statistics.median(scan_s)
    print(f"matching: {len(specs)} subscriptions of {organisations} organisations, {len(MATERIALS)} materials")
    print(f"  index lookups/s (median of {repeats}): {index_rate:,.0f}")
    print(
        f"  index lookups/s, first per (material, severity), merge included: "
        f"{len(cold) / statistics.median(cold_s):,.0f}"
    )
    print(f"  scan lookups/s  (median of {repeats}): {scan_rate:,.0f}")
    print(f"  index / scan: {index_rate / scan_rate:,.0f}x")


def bench_pipeline(repeats: int, rng: random.Random) -> None:
    now = datetime.now(UTC)
    orgs = [f"org-{i}" for i in range(200)]
    channels = {f"{o}-hook": ChannelRoute(f"{o}-hook", o) for o in orgs}
    alerts = [
        Alert(
            organisation_id=o,
            fingerprint=f"fp-{i}",
            material=rng.choice(MATERIALS),
            rule="price_spike",
            severity=rng.choice(list(Severity)),
            status=BreachStatus.FIRING,
            classification=Classification.PUBLIC,
            starts_at=now,
            summary="s",
            id=f"a-{i}",
            channel_ids=(f"{o}-hook",),
        )
        for i, o in enumerate(rng.choices(orgs, k=5000))
    ]

    def run() -> None:
        ctx = PipelineContext(
            now=now,
            timing=Timing(),
            clearance=dict.fromkeys(orgs, Classification.GOVERNMENT),
            channels=channels,
            firing=alerts[:500],
        )
        run_pipeline(ctx, list(alerts), (classification_gate, inhibit, silence, route, deduplicate, group))

    import logging

    logging.disable(logging.INFO)  # the per-decision log line would measure the log handler, not the stages
    seconds = timed(run, repeats)
    logging.disable(logging.NOTSET)
    print(
        f"pipeline: {len(alerts) / statistics.median(seconds):,.0f} alerts/s through the pure stages "
        f"(median of {repeats}, batches of {len(alerts)})"
    )


def bench_dispatch(repeats: int, rng: random.Random) -> None:
    import logging

    from services.notify.matching import build_index
    from services.notify.pipeline.dispatch import dispatch_breaches
    from services.notify.store import models
    from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work

    logging.disable(logging.INFO)
    rates = []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            migrate(url)
            engine = create_db_engine(url)
            sessions = session_factory(engine)
            with unit_of_work(sessions) as s:
                for o in range(100):
                    org = models.Organisation(name=f"org {o}", kind="company", clearance="government")
                    s.add(org)
                    s.flush()
                    channel = models.Channel(
                        organisation_id=org.id,
                        kind="webhook",
                        target="https://x.test/h",
                        secret="whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
                    )
                    s.add(channel)
                    s.flush()
                    for material in rng.sample(MATERIALS, 5):
                        sub = models.Subscription(organisation_id=org.id, material=material)
                        s.add(sub)
                        s.flush()
                        s.add(models.SubscriptionChannel(subscription_id=sub.id, channel_id=channel.id))
            with unit_of_work(sessions) as s:
                index = build_index(s)
            now = datetime.now(UTC)
            breaches = [
                BreachRaised(
                    fingerprint=f"fp-{r}-{i}",
                    material=rng.choice(MATERIALS),
                    rule="price_spike",
                    indicator="price_volatility",
                    severity=Severity.WARNING,
                    status=BreachStatus.FIRING,
                    value=0.5,
                    threshold=0.3,
                    starts_at=now - timedelta(hours=1),
                    observed_at=now,
                    summary="bench",
                )
                for i in range(200)
            ]
            start = time.perf_counter()
            for batch in range(0, len(breaches), 50):
                with unit_of_work(sessions) as s:
                    dispatch_breaches(s, index, breaches[batch : batch + 50], now, Timing())
            rates.append(len(breaches) / (time.perf_counter() - start))
            engine.dispose()
    logging.disable(logging.NOTSET)
    print(
        f"dispatch: {statistics.median(rates):,.0f} breaches/s into alerts + outbox on SQLite "
        f"(median of {repeats}; 100 organisations x 5 subscriptions, batches of 50)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organisations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    bench_matching(args.organisations, args.repeats, rng)
    bench_pipeline(args.repeats, rng)
    bench_dispatch(max(1, args.repeats // 2), rng)


if __name__ == "__main__":
    main()
