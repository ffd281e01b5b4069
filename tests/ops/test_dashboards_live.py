"""Every query of every dashboard panel returns data from a real Prometheus scraping the running services.

The local stack (deploy/local/stack.py) runs the three services on the test broker; an ingest process with
scheduled sources runs beside it exactly as the Kubernetes poller does (`mews ingest api --sources`), so the
fetch and freshness metrics are scraped too. The scheduled sources are the ingest test fixtures (a hostile
price file gives dead letters); gallium signals pushed through the API raise a breach that notify delivers
to a webhook receiver and fails to deliver to a second, unreachable one. Prometheus (the Debian binary)
scrapes every second; each panel query, with Grafana's variables replaced by concrete values, must answer
without error and with at least one series.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from string import Template

import httpx
import pytest

from deploy.local.receiver import serve
from deploy.local.stack import DEMO_INGEST_KEY, ROOT, Ports, Stack
from tests.conftest import FIXTURES, free_port
from tests.eventually import eventually_blocking
from tests.ops.conftest import DEPLOY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRAPE = "1s"
# What Grafana would substitute: $__rate_interval is at least four scrapes; $__range the whole test so far.
SUBSTITUTIONS = {"$__rate_interval": "15s", "$__interval": "2s", "$__range": "10m"}
DEADLINE_S = 150


def sources_file(directory: Path) -> Path:
    """Scheduled sources over the ingest fixtures, read from files next to the config."""
    fixtures = FIXTURES / "ingest"
    for name in ("prices.csv", "export_controls.rss", "leadtimes.csv", "comext.csv"):
        shutil.copy(fixtures / name, directory / name)
    shutil.copy(fixtures / "hostile" / "prices_hostile.csv", directory / "prices_hostile.csv")
    config = directory / "sources.toml"
    config.write_text("""
[[source]]
name = "fixture-prices"
kind = "csv_prices"
path = "prices.csv"
interval = "5s"
currency = "USD"
unit = "kg"

[[source]]
name = "fixture-hostile-prices"
kind = "csv_prices"
path = "prices_hostile.csv"
interval = "5s"
currency = "USD"
unit = "kg"

[[source]]
name = "fixture-export-controls"
kind = "feed"
path = "export_controls.rss"
interval = "5s"

[[source]]
name = "fixture-leadtimes"
kind = "leadtimes"
path = "leadtimes.csv"
interval = "5s"

[[source]]
name = "fixture-comext"
kind = "comext"
path = "comext.csv"
interval = "5s"
""")
    return config


def start_prometheus(directory: Path, targets: dict[str, list[str]]) -> tuple[subprocess.Popen, str]:
    """The Debian prometheus binary with the local scrape template, on a free port."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run deploy/tools/install-system.sh as root")
    text = Template((DEPLOY / "prometheus" / "prometheus.local.yaml.in").read_text()).substitute(
        SCRAPE_INTERVAL=SCRAPE,
        RULES_FILE=str(DEPLOY / "prometheus" / "rules" / "mews.rules.yaml"),
        INGEST_TARGET="127.0.0.1:0",
        SCORING_TARGET="127.0.0.1:0",
        NOTIFY_TARGET="127.0.0.1:0",
    )
    for job, hosts in targets.items():  # the template has one target per job; the test has two ingest ones
        text = text.replace(
            f'job_name: {job}\n    static_configs:\n      - targets: ["127.0.0.1:0"]',
            f"job_name: {job}\n    static_configs:\n      - targets: {json.dumps(hosts)}",
        )
    assert "127.0.0.1:0" not in text
    config = directory / "prometheus.yaml"
    config.write_text(text)
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (directory / "prometheus.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually_blocking(ready, within=30, what="prometheus ready", every=0.2)
    except AssertionError:
        proc.kill()
        raise
    return proc, url


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) for every target of every panel."""
    found = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((board["title"], panel["title"], target["expr"]))
    return found


def concrete(expr: str, variables: dict[str, str]) -> str:
    for name, value in {**SUBSTITUTIONS, **{f"${k}": v for k, v in variables.items()}}.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def query(url: str, expr: str) -> tuple[str | None, int]:
    """(error, number of series) of an instant query."""
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    if answer["status"] != "success":
        return f"{answer.get('errorType')}: {answer.get('error')}", 0
    return None, len(answer["data"]["result"])


def chosen_material(url: str) -> str | None:
    """The value Grafana's material variable offers first, preferring one with breaches (the one in trouble)."""
    values = httpx.get(
        f"{url}/api/v1/label/material/values", params={"match[]": "mews_scoring_risk_score"}, timeout=10
    ).json()["data"]
    with_breaches = httpx.get(
        f"{url}/api/v1/label/material/values", params={"match[]": "mews_scoring_breaches_total"}, timeout=10
    ).json()["data"]
    preferred = [m for m in values if m in with_breaches]
    return (["gallium"] if "gallium" in preferred else preferred or values or [None])[0]


def push_demo_signals(stack: Stack) -> None:
    """Gallium through the push API: a 50% price jump (a breach, then a webhook), lead times doubling against
    their baseline, EU27 imports by origin (concentration), one item twice (a duplicate) and one bad item."""
    headers = {"Authorization": f"Bearer {DEMO_INGEST_KEY}"}

    def post(kind: str, items: list[dict]) -> None:
        answer = httpx.post(f"{stack.url('ingest')}/v1/{kind}", headers=headers, json={"items": items}, timeout=10)
        assert answer.status_code < 500, answer.text

    prices = [
        {
            "material": "gallium",
            "price": price,
            "currency": "USD",
            "unit": "kg",
            "observed_at": f"2026-11-{day}T00:00:00Z",
        }
        for day, price in (("19", 300), ("20", 310), ("21", 465))
    ]
    post("prices", prices)
    post("prices", prices[:1])
    post(
        "prices",
        [{"material": "gallium", "price": -1, "currency": "USD", "unit": "kg", "observed_at": "2026-11-21T00:00:00Z"}],
    )
    # Quotes within scoring's lead-time lateness (14 days) of the newest gallium event, or they would be late.
    post(
        "leadtimes",
        [
            {
                "material": "gallium",
                "lead_time_days": days,
                "quoted_at": f"2026-11-{day}T00:00:00Z",
                "supplier": "Demo Metals",
                "origin_country": "CN",
            }
            for day, days in (("08", 110), ("12", 120), ("15", 125), ("20", 260))
        ],
    )
    post(
        "trade",
        [
            {
                "reporter": "EU27",
                "partner": partner,
                "hs_code": "81129289",
                "period": "2026-09",
                "flow": "import",
                "quantity_kg": kg,
                "value_eur": kg * 400,
            }
            for partner, kg in (("CN", 9000), ("JP", 600), ("US", 400))
        ],
    )


def add_unreachable_channel(stack: Stack, company_key: str) -> None:
    """A second webhook channel whose receiver is down, so retries and failed outcomes are exercised too."""
    auth = {"Authorization": f"Bearer {company_key}"}
    with httpx.Client(base_url=stack.url("notify"), timeout=10) as api:
        channel = api.post(
            "/v1/channels",
            headers=auth,
            json={
                "kind": "webhook",
                "target": f"http://127.0.0.1:{free_port()}/",
                "language": "en",
                "mode": "immediate",
            },
        )
        assert channel.status_code == 201, channel.text
        products = api.get("/v1/products", headers=auth).json()
        product_id = (products["items"] if isinstance(products, dict) else products)[0]["id"]
        subscription = api.post(
            "/v1/subscriptions",
            headers=auth,
            json={"product_id": product_id, "min_severity": "warning", "channel_ids": [channel.json()["id"]]},
        )
        assert subscription.status_code == 201, subscription.text


def test_every_dashboard_query_returns_series_from_the_running_services(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    ports = Ports(ingest=free_port(), scoring=free_port(), notify=free_port(), receiver=free_port(), kafka=0)
    poller_port = free_port()
    stack = Stack(state_dir=tmp_path / "stack", kafka_bootstrap=kafka_bootstrap, namespace=namespace, ports=ports)
    with stack:
        tenant = stack.provision_demo(f"http://127.0.0.1:{ports.receiver}/")
        receiver = serve(ports.receiver, tenant.webhook_secret)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        poller_dir = tmp_path / "poller"
        poller_dir.mkdir()
        env = {
            **stack.service_env(),
            "MEWS_INGEST_PORT": str(poller_port),
            "MEWS_INGEST_STATE_DIR": str(poller_dir / "state"),
        }
        poller_log = (poller_dir / "poller.log").open("wb")
        poller = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "ingest", "api", "--sources", str(sources_file(poller_dir))],
            cwd=ROOT,
            env=env,
            stdout=poller_log,
            stderr=subprocess.STDOUT,
        )
        prometheus, url = start_prometheus(
            tmp_path,
            {
                "mews-ingest": [f"127.0.0.1:{ports.ingest}", f"127.0.0.1:{poller_port}"],
                "mews-scoring": [f"127.0.0.1:{ports.scoring}"],
                "mews-notify": [f"127.0.0.1:{ports.notify}"],
            },
        )
        try:
            add_unreachable_channel(stack, tenant.company_key)
            push_demo_signals(stack)
            queries = dashboard_queries()
            assert len(queries) > 30
            missing: dict[tuple[str, str, str], str] = {}
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                assert poller.poll() is None, (poller_dir / "poller.log").read_text()[-3000:]
                material = chosen_material(url)
                missing = {}
                for board, panel, expr in queries:
                    if material is None and "$material" in expr:
                        missing[(board, panel, expr)] = "no material has a risk score yet"
                        continue
                    error, series = query(url, concrete(expr, {"material": material or ""}))
                    if error or series == 0:
                        missing[(board, panel, expr)] = error or "no series"
                if not missing or any(v != "no series" and not v.startswith("no material") for v in missing.values()):
                    break
                time.sleep(2)
            report = "\n".join(
                f"{board} / {panel}: {reason}\n    {expr}" for (board, panel, expr), reason in sorted(missing.items())
            )
            assert not missing, f"{len(missing)} of {len(queries)} panel queries fail or return nothing:\n{report}"
        finally:
            prometheus.terminate()
            poller.terminate()
            prometheus.wait(10)
            poller.wait(20)
            receiver.shutdown()
