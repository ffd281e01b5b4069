"""Benchmark of the notifier's dispatch: B breaches x M subscribed organisations in one batch, into alert rows,
outbox notifications and notification-log entries, on SQLite (and PostgreSQL when a server URL is given).

The crisis fan-out of issue 10: one batch of 100 breaches to 50 organisations is 5,000 alert-organisation pairs.
Prints the median pairs/s of a few runs. With `--against REV` it first runs the same workload on the code of an
earlier commit (extracted with `git archive` into a temporary folder), each tree in a fresh interpreter, and
prints the ratio.

Run: .venv/bin/python bench/notify_dispatch_bench.py [--breaches 100] [--organisations 50] [--runs 3]
     [--against 3389b4b] [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness.trees import extract  # noqa: E402


def _world(sessions, organisations: int) -> None:
    from services.notify.store import models
    from services.notify.store.db import unit_of_work

    with unit_of_work(sessions) as s:
        for o in range(organisations):
            org = models.Organisation(name=f"org {o}", kind="company", clearance="government")
            s.add(org)
            s.flush()
            channel = models.Channel(
                organisation_id=org.id,
                kind="webhook",
                target=f"https://x.test/{o}",
                secret="whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
            )
            sub = models.Subscription(organisation_id=org.id, material="gallium")
            s.add_all([channel, sub])
            s.flush()
            s.add(models.SubscriptionChannel(subscription_id=sub.id, channel_id=channel.id))


def _breaches(count: int, run: int):
    from shared.events import BreachRaised, BreachStatus, Severity

    now = datetime.now(UTC)
    return [
        BreachRaised(
            fingerprint=f"fp-{run}-{i}",
            material="gallium",
            rule=f"rule_{i}",
            indicator="price_volatility",
            severity=Severity.WARNING,
            status=BreachStatus.FIRING,
            value=0.5,
            threshold=0.3,
            starts_at=now - timedelta(hours=1),
            observed_at=now,
            summary="bench",
        )
        for i in range(count)
    ]


def _database(kind: str, tmp: str, postgres_url: str | None) -> tuple[str, object]:
    """A fresh database URL and a function that drops it afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db", lambda: None
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    name = f"bench_{uuid.uuid4().hex[:10]}"

    def admin(statement: str) -> None:
        with psycopg.connect(
            host=server.host,
            port=server.port,
            user=server.username,
            password=server.password,
            dbname=server.database or "postgres",
            autocommit=True,
        ) as conn:
            conn.execute(statement)

    admin(f'CREATE DATABASE "{name}"')
    return server.set(database=name).render_as_string(hide_password=False), lambda: admin(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


def measure(kind: str, breaches: int, organisations: int, runs: int, postgres_url: str | None) -> dict:
    """Seconds per run of one dispatch of `breaches` x `organisations`, and the rows it wrote."""
    from sqlalchemy import func, select

    from services.notify.matching import build_index
    from services.notify.pipeline.alert import Timing
    from services.notify.pipeline.dispatch import dispatch_breaches
    from services.notify.store import models
    from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work

    logging.disable(logging.INFO)  # per-decision log lines would measure the handler
    walls, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            url, drop = _database(kind, tmp, postgres_url)
            migrate(url)
            engine = create_db_engine(url)
            sessions = session_factory(engine)
            _world(sessions, organisations)
            with unit_of_work(sessions) as s:
                index = build_index(s)
            batch = _breaches(breaches, run)
            start = time.perf_counter()
            with unit_of_work(sessions) as s:
                dispatch_breaches(s, index, batch, datetime.now(UTC), Timing())
            walls.append(time.perf_counter() - start)
            with unit_of_work(sessions) as s:
                rows.append(
                    {
                        "alerts": s.scalar(select(func.count()).select_from(models.Alert)),
                        "notifications": s.scalar(select(func.count()).select_from(models.Notification)),
                        "log": s.scalar(select(func.count()).select_from(models.NotificationLogEntry)),
                    }
                )
            engine.dispose()
            drop()
    return {"walls": walls, "rows": rows, "pairs": breaches * organisations}


def run_tree(root: Path, args: argparse.Namespace, kind: str) -> dict:
    """The figures of the code tree at `root`, measured in a fresh interpreter."""
    extra = ["--postgres-url", args.postgres_url] if args.postgres_url else []
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--json",
            kind,
            "--root",
            str(root),
            "--breaches",
            str(args.breaches),
            "--organisations",
            str(args.organisations),
            "--runs",
            str(args.runs),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def describe(label: str, m: dict) -> str:
    wall = statistics.median(m["walls"])
    return (
        f"  {label}: median {wall:.3f} s for {m['pairs']:,} pairs = {m['pairs'] / wall:,.0f} pairs/s; "
        f"runs: {', '.join(f'{w:.3f}' for w in m['walls'])} s; rows written {m['rows'][-1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breaches", type=int, default=100)
    parser.add_argument("--organisations", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also measure the code of this commit, first")
    parser.add_argument("--postgres-url", help="also measure on this PostgreSQL server (a database per run)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--json", choices=("sqlite", "postgresql"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        sys.path.insert(0, str(args.root))
        print(json.dumps(measure(args.json, args.breaches, args.organisations, args.runs, args.postgres_url)))
        return
    print(
        f"workload: one batch of {args.breaches} breaches x {args.organisations} subscribed organisations "
        f"(one webhook channel each), median of {args.runs} runs"
    )
    for kind in ("sqlite", "postgresql") if args.postgres_url else ("sqlite",):
        print(kind)
        before = None
        if args.against:
            with tempfile.TemporaryDirectory() as tmp:
                extract(args.against, Path(tmp))
                before = run_tree(Path(tmp), args, kind)
            print(describe(f"at {args.against}", before))
        after = run_tree(ROOT, args, kind)
        print(describe("working tree", after))
        if before is not None:
            print(f"  speed-up: {statistics.median(before['walls']) / statistics.median(after['walls']):.2f}x")


if __name__ == "__main__":
    main()
