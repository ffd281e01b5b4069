"""Browser tests of the console: Debian's headless Chromium driven by Selenium through Debian's chromedriver.

Nothing is downloaded: the browser and its driver come from the system install step
(deploy/tools/install-system.sh), Selenium is told both paths, and axe-core is vendored under vendor/. One browser
and one notify stack (API and console, the notifier on the session's real broker, a SQLite database, a webhook
receiver, and scoring's read API and an ingest stand-in for the ops desk) serve a whole test module, so a module
costs a few seconds of start-up, not one per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.ingest.poll import SourceHealth
from tests.conftest import free_port
from tests.eventually import eventually_blocking
from tests.integration.notify.upstreams import serving, serving_sources

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


def _system_binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"{' or '.join(names)} is not installed: run `make install` (deploy/tools/install-system.sh "
        "installs Debian's chromium and chromium-driver)"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium at 1280 pixels wide, English by default."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _system_binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-GB",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-GB,en"})
    driver = webdriver.Chrome(service=Service(_system_binary("chromedriver")), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (the http.server hook)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.received += 1  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Inbox:
    """aiosmtpd's handler: keeps each message the notify service sends, parsed."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        from email import message_from_bytes, policy

        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@dataclass
class ConsoleStack:
    """A running notify service with its console, and the demo tenants' keys."""

    url: str
    settings: object
    sessions: object
    receiver_url: str
    company_key: str
    ministry_key: str
    receiver: ThreadingHTTPServer
    inbox: _Inbox
    stops: list = field(default_factory=list)


UPSTREAM_KEY = "console-test-upstream-key"


def _scoring_api():
    """Scoring's read API over a view that read an hour of snapshots of three materials."""
    import hashlib
    import math
    from datetime import UTC, datetime, timedelta

    from services.scoring.api import create_api
    from services.scoring.settings import ScoringSettings
    from services.scoring.view import MaterialsView
    from shared.events import IndicatorSnapshot

    view = MaterialsView()
    start = datetime.now(UTC) - timedelta(hours=1)
    for step in range(60):
        for material, base, swing in (("gallium", 55.0, 12.0), ("germanium", 38.0, 6.0), ("tungsten", 21.0, 3.0)):
            volatility = 0.25 + 0.1 * math.sin(step / 6) + (0.2 if material == "gallium" and step > 40 else 0.0)
            components = {
                "volatility": 100 * 0.2 * min(1.0, volatility),
                "concentration": base * 0.4,
                "export_controls": base * 0.3 + swing * step / 60,
            }
            view.apply(
                IndicatorSnapshot(
                    material=material,
                    as_of=start + timedelta(minutes=step),
                    components=components,
                    risk_score=sum(components.values()),
                    indicators={
                        "price_volatility": volatility,
                        "leadtime_days": 40 + swing * step / 20,
                        "concentration_hhi": 5200.0 + 10 * step,
                    },
                )
            )
    digest = hashlib.sha256(UPSTREAM_KEY.encode()).hexdigest()
    return create_api(ScoringSettings(api_keys=f"{digest}:government"), view)


@pytest.fixture(scope="module")
def console_stack(kafka_bootstrap: str) -> Iterator[ConsoleStack]:
    """The notify API with the console and the notifier on the real broker, on a SQLite file of this module."""
    import uuid

    import uvicorn

    from services.notify.api.app import create_app
    from services.notify.settings import NotifySettings
    from services.notify.store import models
    from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work
    from services.notify.store.keys import issue_api_key
    from services.notify.store.organisations import create_organisation
    from services.notify.worker import Notifier
    from shared.kafka import ensure_topics

    upstreams = contextlib.ExitStack()
    scoring_url = upstreams.enter_context(serving(_scoring_api()))
    now = time.time()
    ingest_url = upstreams.enter_context(
        serving_sources(
            {
                "lme-prices": SourceHealth(last_attempt=now - 120, last_success=now - 120, last_counts={"ok": 12}),
                "mofcom-announcements": SourceHealth(
                    last_attempt=now - 300, last_success=now - 300, last_counts={"ok": 2}
                ),
                "usgs-mcs": SourceHealth(
                    last_attempt=now - 60, last_success=now - 3 * 86400, last_error="HTTP 503", consecutive_failures=3
                ),
            },
            UPSTREAM_KEY,
        )
    )
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    upstreams.callback(smtp.stop)
    state = Path(tempfile.mkdtemp(prefix="mews-console-"))
    database_url = f"sqlite:///{state / 'notify.db'}"
    migrate(database_url)
    namespace = f"t{uuid.uuid4().hex[:10]}"
    asyncio.run(ensure_topics(kafka_bootstrap, namespace))
    port = free_port()
    settings = NotifySettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_namespace=namespace,
        database_url=database_url,
        allow_private_webhook_targets=True,
        public_base_url=f"http://127.0.0.1:{port}",
        group_wait_seconds=0.3,
        group_interval_seconds=1.0,
        repeat_interval_seconds=3600,
        retry_initial_seconds=0.2,
        retry_jitter=0,
        outbox_poll_seconds=0.1,
        webhook_timeout_seconds=5,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        console_scoring_url=scoring_url,
        console_scoring_key=UPSTREAM_KEY,
        console_ingest_url=ingest_url,
        console_ingest_key=UPSTREAM_KEY,
    )
    engine = create_db_engine(database_url)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as s:
        company = create_organisation(s, name="Demo Radar Systems B.V.", kind="company", clearance="public")
        _, company_key = issue_api_key(s, company.id, name="console test", role="admin")
        s.add(models.User(organisation_id=company.id, email="buyer@radar.test", name="Buyer", role="member"))
        ministry = create_organisation(
            s, name="Demo Ministry of Economic Affairs", kind="ministry", clearance="government"
        )
        _, ministry_key = issue_api_key(s, ministry.id, name="console test", role="member")

    receiver = ThreadingHTTPServer(("127.0.0.1", free_port()), _Receiver)
    receiver.received = 0  # type: ignore[attr-defined]
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    loop = asyncio.new_event_loop()
    started: list[Notifier] = []

    async def run_notifier() -> None:
        notifier = Notifier(
            settings, sessions, group_id=f"console-{namespace}", index_refresh_seconds=0, sweep_interval_seconds=0.3
        )
        started.append(notifier)
        await notifier.run()

    notifier_thread = threading.Thread(target=loop.run_until_complete, args=(run_notifier(),), daemon=True)
    notifier_thread.start()
    eventually_blocking(lambda: started, within=30, what="the notifier started")

    app = create_app(settings, engine=engine, on_subscriptions_changed=started[0].invalidate_index)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
    server_thread = threading.Thread(target=server.run, daemon=True)
    server_thread.start()
    eventually_blocking(lambda: server.started, within=30, what="the notify API started")
    try:
        yield ConsoleStack(
            f"http://127.0.0.1:{port}",
            settings,
            sessions,
            f"http://127.0.0.1:{receiver.server_address[1]}/hook",
            company_key,
            ministry_key,
            receiver,
            inbox,
        )
    finally:
        server.should_exit = True
        server_thread.join(15)
        loop.call_soon_threadsafe(started[0].stop)
        notifier_thread.join(20)
        receiver.shutdown()
        upstreams.close()
        engine.dispose()
        shutil.rmtree(state, ignore_errors=True)


def save_screenshot(driver, name: str) -> Path:
    """The whole page, beyond the window, as var/screenshots/<name>.png (Chrome's DevTools capture)."""
    import base64

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width, height = driver.execute_script(
        "return [document.documentElement.clientWidth,"
        " Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1},
        },
    )
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def serious_violations(driver) -> list[str]:
    """What axe-core finds on the page at the serious or critical level, one line per rule and node."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
        " 'best-practice']}, resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));"
    )
    return [
        f"{v['id']} ({v['impact']}): {node}"
        for v in found
        if v["impact"] in ("serious", "critical")
        for node in v["nodes"]
    ]
