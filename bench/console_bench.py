"""Server time of every console page with 1,000 alerts and 500 subscriptions, against the JSON API on the same data.

One company holds the alerts (spread over 40 materials, two rules, both severities, half acknowledged), 500
subscriptions on 5 channels, 20 products of 10 BOM lines and 1,000 deliveries; 20 other companies hold alerts of
their own, so the crisis list and the ops desk aggregate over many organisations. Each page is requested in-process
through the ASGI app (httpx's ASGITransport: the server's time, no socket), signed in with the console's cookie;
its anchor is the JSON API answering the same data in the same run with the same key: the inbox against
GET /v1/alerts with the same limit, the subscriptions page against /v1/subscriptions plus /v1/channels and so on.
Printed per page and run, and as the median of the runs: median and p95 of the console, of the anchor, and the
ratio of the medians.

The ops desk also reads scoring's read API (its own app over a view that read 60 snapshots of 30 materials) and an
ingest answering `GET /v1/sources` for 12 sources, both served by uvicorn on loopback, as in production over HTTP;
its anchor adds the same three reads, made directly with one httpx client.

There is no before: the console is new (3389b4b and 43174de have no /console), so the JSON API in the same run is
the comparison.

Run: .venv/bin/python bench/console_bench.py [--alerts 1000] [--subscriptions 500] [--requests 30]
    [--runs 3] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from bench.harness.figures import percentile  # noqa: E402
from services.notify.api.app import create_app  # noqa: E402
from services.notify.settings import NotifySettings  # noqa: E402
from services.notify.store import models  # noqa: E402
from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work  # noqa: E402
from services.notify.store.keys import issue_api_key  # noqa: E402
from services.scoring.api import create_api  # noqa: E402
from services.scoring.settings import ScoringSettings  # noqa: E402
from services.scoring.view import MaterialsView  # noqa: E402
from shared.catalog import load_catalog  # noqa: E402
from shared.events import IndicatorSnapshot  # noqa: E402

RULES = ("price_spike", "leadtime_jump")
UPSTREAM_KEY = "bench-upstream-key"


def scoring_app() -> FastAPI:
    """Scoring's read API over a view that read 60 snapshots of each of 30 materials, six indicators each."""
    view = MaterialsView()
    start = datetime.now(UTC) - timedelta(hours=1)
    for material in [m.id for m in load_catalog().materials][:30]:
        for step in range(60):
            components = {
                "volatility": 10 + step % 7,
                "price_trend": 5.0,
                "leadtime": 8.0,
                "concentration": 20.0,
                "export_controls": 15.0,
            }
            view.apply(
                IndicatorSnapshot(
                    material=material,
                    as_of=start + timedelta(minutes=step),
                    components=components,
                    risk_score=sum(components.values()),
                    indicators={
                        "price": 800.0 + step,
                        "price_volatility": 0.3 + step / 600,
                        "leadtime_days": 40.0 + step,
                        "leadtime_ratio": 1.1,
                        "concentration_hhi": 5200.0,
                        "top_origin_share": 0.8,
                    },
                )
            )
    digest = hashlib.sha256(UPSTREAM_KEY.encode()).hexdigest()
    return create_api(ScoringSettings(api_keys=f"{digest}:government"), view)


def ingest_sources_app() -> FastAPI:
    """`GET /v1/sources` as ingest answers it: 12 sources' health."""
    app = FastAPI()
    now = time.time()
    health = {
        f"source-{i:02d}": {
            "last_attempt": now - 60,
            "last_success": now - 60 * (i + 1),
            "last_error": "",
            "consecutive_failures": i % 3,
            "last_counts": {"ok": 5},
        }
        for i in range(12)
    }

    @app.get("/v1/sources")
    def sources() -> dict:
        return health

    return app


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of its own."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _breach(material: str, rule: str, severity: str, at: datetime, value: float) -> dict:
    evidence = [
        {
            "id": f"ev-{i}",
            "source": "lme",
            "kind": "price",
            "time": (at - timedelta(days=i)).isoformat(),
            "value": 800 + 10 * i,
            "url": "https://example.org/p",
        }
        for i in range(10)
    ]
    return {
        "fingerprint": f"{material}-{rule}",
        "material": material,
        "rule": rule,
        "indicator": "price_volatility",
        "severity": severity,
        "status": "firing",
        "value": value,
        "warning_threshold": 0.3,
        "critical_threshold": 0.6,
        "clear_threshold": 0.25,
        "threshold": 0.6 if severity == "critical" else 0.3,
        "starts_at": (at - timedelta(hours=2)).isoformat(),
        "observed_at": at.isoformat(),
        "summary": f"{material} volatility {value:.2f}",
        "evidence": evidence,
        "classification": "public",
    }


def seed(sessions, alerts: int, subscriptions: int, rng: random.Random) -> tuple[str, str, str]:
    """The data set; returns the company's admin key, the ministry's key and one alert id."""
    materials = [m.id for m in load_catalog().materials][:40]
    now = datetime.now(UTC)
    with unit_of_work(sessions) as s:
        company = models.Organisation(name="Bench Company", kind="company", clearance="public")
        ministry = models.Organisation(name="Bench Ministry", kind="ministry", clearance="government")
        others = [models.Organisation(name=f"Other {i}", kind="company", clearance="public") for i in range(20)]
        s.add_all([company, ministry, *others])
        s.flush()
        _, company_key = issue_api_key(s, company.id, name="bench", role="admin")
        _, ministry_key = issue_api_key(s, ministry.id, name="bench", role="member")
        channels = [
            models.Channel(
                organisation_id=company.id,
                kind="webhook",
                target=f"https://hooks.example/{i}",
                secret="whsec_" + "a" * 32,
            )
            for i in range(5)
        ]
        s.add_all(channels)
        products = []
        for p in range(20):
            product = models.Product(
                organisation_id=company.id,
                name=f"Product {p:02d}",
                bom_lines=[
                    models.BomLine(
                        component=f"Component {c}", material=rng.choice(materials), share=0.05, origin_country="CN"
                    )
                    for c in range(10)
                ],
            )
            products.append(product)
        s.add_all(products)
        s.flush()
        for i in range(subscriptions):
            sub = models.Subscription(
                organisation_id=company.id,
                min_severity="warning",
                material=materials[i % len(materials)] if i % 5 else None,
                product_id=None if i % 5 else products[i % len(products)].id,
            )
            sub.channels = [channels[i % len(channels)]]
            s.add(sub)
        rows = []
        for i in range(alerts):
            material, rule = materials[i % len(materials)], RULES[(i // len(materials)) % 2]
            severity = "critical" if i % 3 == 0 else "warning"
            at = now - timedelta(minutes=i)
            rows.append(
                models.Alert(
                    organisation_id=company.id,
                    fingerprint=f"fp-{i}",
                    material=material,
                    rule=rule,
                    severity=severity,
                    status="firing" if i % 4 else "resolved",
                    starts_at=at - timedelta(hours=2),
                    updated_at=at,
                    summary=f"{material} volatility",
                    breach=_breach(material, rule, severity, at, 0.4 + (i % 50) / 100),
                    via=[f"material:{material}"],
                    acknowledged_at=at if i % 2 else None,
                    acknowledged_by="bench" if i % 2 else None,
                )
            )
        for j, other in enumerate(others):
            for k in range(10):
                material = materials[(j + k) % len(materials)]
                rows.append(
                    models.Alert(
                        organisation_id=other.id,
                        fingerprint=f"fp-o{j}-{k}",
                        material=material,
                        rule=RULES[k % 2],
                        severity="warning",
                        status="firing",
                        starts_at=now,
                        updated_at=now,
                        summary="",
                        breach=_breach(material, RULES[k % 2], "warning", now, 0.45),
                        via=[],
                    )
                )
        s.add_all(rows)
        s.flush()
        s.add_all(
            [
                models.Notification(
                    organisation_id=company.id,
                    channel_id=channels[i % 5].id,
                    kind="alert",
                    alert_ids=[rows[i].id],
                    status="failed" if i % 10 == 0 else "delivered",
                    attempts=1,
                    created_at=now - timedelta(minutes=i),
                )
                for i in range(alerts)
            ]
        )
        for material in materials[:30]:
            for rule in RULES:
                b = _breach(material, rule, "warning", now, 0.5)
                s.add(models.OpenBreach(fingerprint=b["fingerprint"], material=material, observed_at=now, breach=b))
        return company_key, ministry_key, rows[1].id


async def _sign_in(client: httpx.AsyncClient, key: str) -> None:
    page = await client.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = await client.post("/console/sign-in", data={"csrf": csrf, "api_key": key, "next": "/console"})
    assert answer.status_code == 303, answer.text


async def _time(
    client: httpx.AsyncClient, paths: list[str], requests: int, headers: dict | None = None, direct: list[str] = ()
) -> list[float]:
    """Milliseconds per request of the page (the sum over `paths`, for an anchor made of several calls, and over
    `direct` URLs read over loopback HTTP with the upstream key)."""
    times = []
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {UPSTREAM_KEY}"}) as upstream:
        for _ in range(requests + 2):  # two warm-ups, not counted
            started = time.perf_counter()
            for path in paths:
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                assert 'class="error"' not in answer.text, (path, "an upstream read failed")
            for url in direct:
                assert (await upstream.get(url)).status_code == 200, url
            times.append((time.perf_counter() - started) * 1000)
    return times[2:]


async def measure(
    app, company_key: str, ministry_key: str, alert_id: str, requests: int, upstream_reads: list[str]
) -> list[tuple]:
    transport = httpx.ASGITransport(app=app)
    results = []
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as company,
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ministry,
    ):
        await _sign_in(company, company_key)
        await _sign_in(ministry, ministry_key)
        ops_materials = [m.id for m in load_catalog().materials][:30]
        pages = [
            ("inbox (limit 100)", company, ["/console/alerts"], company_key, ["/v1/alerts?limit=100"]),
            ("inbox (limit 1,000)", company, ["/console/alerts?limit=1000"], company_key, ["/v1/alerts?limit=1000"]),
            (
                "inbox filtered",
                company,
                ["/console/alerts?status=firing&severity=critical&material=gallium"],
                company_key,
                ["/v1/alerts?status=firing&severity=critical&material=gallium&limit=100"],
            ),
            ("alert detail", company, [f"/console/alerts/{alert_id}"], company_key, [f"/v1/alerts/{alert_id}"]),
            (
                "subscriptions",
                company,
                ["/console/subscriptions"],
                company_key,
                ["/v1/subscriptions", "/v1/channels", "/v1/products"],
            ),
            ("products", company, ["/console/products"], company_key, ["/v1/products"]),
            ("deliveries", company, ["/console/deliveries"], company_key, ["/v1/deliveries?limit=200"]),
            ("crisis", ministry, ["/console/crisis"], ministry_key, ["/v1/crisis"]),
            (
                "ops desk",
                ministry,
                ["/console/ops"],
                ministry_key,
                ["/v1/crisis", *[f"/v1/exposure?material={m}" for m in ops_materials]],
            ),
        ]
        for name, client, console_paths, key, api_paths in pages:
            direct = upstream_reads if name == "ops desk" else []
            console = await _time(client, console_paths, requests)
            anchor = await _time(client, api_paths, requests, headers={"Authorization": f"Bearer {key}"}, direct=direct)
            results.append((name, console, anchor))
    return results


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        from bench.harness.postgres import fresh_database, postgres_server

        with postgres_server() as server:
            yield fresh_database(server)
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/notify.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=500)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page (after two warm-ups)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=3, help="runs over the same data; medians across them")
    args = parser.parse_args()
    with database(args.db) as url:
        migrate(url)
        engine = create_db_engine(url)
        sessions = session_factory(engine)
        company_key, ministry_key, alert_id = seed(sessions, args.alerts, args.subscriptions, random.Random(14))
        with serving(scoring_app()) as scoring, serving(ingest_sources_app()) as ingest:
            app = create_app(
                NotifySettings(
                    database_url=url,
                    console_scoring_url=scoring,
                    console_scoring_key=UPSTREAM_KEY,
                    console_ingest_url=ingest,
                    console_ingest_key=UPSTREAM_KEY,
                ),
                engine=engine,
            )
            reads = [f"{scoring}/v1/risk", f"{scoring}/v1/history", f"{ingest}/v1/sources"]
            runs = [
                asyncio.run(measure(app, company_key, ministry_key, alert_id, args.requests, reads))
                for _ in range(args.runs)
            ]
        engine.dispose()
    print(
        f"console pages, {args.alerts} alerts, {args.subscriptions} subscriptions, {args.db}, "
        f"{args.requests} requests per page and run; server time in ms (in-process ASGI)"
    )
    header = f"{'page':22} {'console p50':>12} {'p95':>8} {'JSON API p50':>13} {'p95':>8} {'ratio p50':>10}"
    for number, results in enumerate(runs, start=1):
        print(f"run {number}\n{header}")
        for name, console, anchor in results:
            c50, a50 = statistics.median(console), statistics.median(anchor)
            print(
                f"{name:22} {c50:12.1f} {percentile(console, 95):8.1f} {a50:13.1f} "
                f"{percentile(anchor, 95):8.1f} {c50 / a50:10.2f}"
            )
    print(f"median of {len(runs)} runs\n{header}")
    for index, (name, _, _) in enumerate(runs[0]):
        c50 = statistics.median(statistics.median(r[index][1]) for r in runs)
        c95 = statistics.median(percentile(r[index][1], 95) for r in runs)
        a50 = statistics.median(statistics.median(r[index][2]) for r in runs)
        a95 = statistics.median(percentile(r[index][2], 95) for r in runs)
        print(f"{name:22} {c50:12.1f} {c95:8.1f} {a50:13.1f} {a95:8.1f} {c50 / a50:10.2f}")


if __name__ == "__main__":
    main()
