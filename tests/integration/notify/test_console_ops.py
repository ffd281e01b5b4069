"""The ops desk from real risk data: scoring's read API (its own app, served on loopback) gives the ranking, the
components and the history behind the sparklines; a loopback ingest answering `GET /v1/sources` as ingest does
gives feed freshness. A service unset, away or refusing the key leaves the page up, saying so."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.ingest.poll import SourceHealth
from services.notify.api.app import create_app
from services.notify.settings import NotifySettings
from services.notify.store.db import unit_of_work
from services.notify.store.keys import issue_api_key
from services.scoring.api import create_api
from services.scoring.settings import ScoringSettings
from services.scoring.view import MaterialsView
from shared.events import Classification, IndicatorSnapshot
from tests.conftest import free_port
from tests.integration.notify.upstreams import serving, serving_sources
from tests.integration.notify.world import add_org

pytestmark = pytest.mark.integration

SCORING_KEY, INGEST_KEY = "scoring-read-key-for-the-desk", "ingest-key-for-the-desk"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def scoring_url() -> Iterator[str]:
    view = MaterialsView()
    for minute, volatility in enumerate((0.20, 0.35, 0.50)):
        view.apply(
            IndicatorSnapshot(
                material="gallium",
                as_of=T0 + timedelta(minutes=minute),
                risk_score=40.0 + 10 * minute,
                indicators={"price_volatility": volatility, "leadtime_days": 30.0 + minute},
                components={"volatility": 20.0 + 10 * minute, "concentration": 20.0},
            )
        )
    view.apply(
        IndicatorSnapshot(
            material="tin",
            as_of=T0,
            risk_score=12.5,
            indicators={"price_volatility": 0.1},
            components={"volatility": 12.5},
        )
    )
    view.apply(
        IndicatorSnapshot(
            material="antimony",
            as_of=T0,
            risk_score=95.0,
            indicators={"price": 1.0},
            components={"export_controls": 95.0},
            classification=Classification.GOVERNMENT,
        )
    )
    settings = ScoringSettings(api_keys=f"{hashlib.sha256(SCORING_KEY.encode()).hexdigest()}:government")
    with serving(create_api(settings, view)) as url:
        yield url


@pytest.fixture
def ingest_url() -> Iterator[str]:
    now = time.time()
    health = {
        "lme-prices": SourceHealth(last_attempt=now - 60, last_success=now - 60, last_counts={"ok": 3}),
        "mofcom-news": SourceHealth(
            last_attempt=now - 30, last_success=now - 86400, last_error="HTTP 503", consecutive_failures=4
        ),
    }
    with serving_sources(health, INGEST_KEY) as url:
        yield url


def _ops_page(database_url: str, db_sessions, **settings: object) -> str:
    with unit_of_work(db_sessions) as s:
        ministry = add_org(s, "Ministry", clearance="government", kind="ministry")
        _, key = issue_api_key(s, ministry.id, name="ministry", role="member")
    with TestClient(
        create_app(NotifySettings(database_url=database_url, **settings)), base_url="http://127.0.0.1"
    ) as client:
        form = client.get("/console/sign-in").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        client.post("/console/sign-in", data={"csrf": csrf, "api_key": key, "next": "/console"})
        page = client.get("/console/ops")
        assert page.status_code == 200, page.text[:2000]
        return page.text


def _section(page: str, heading_id: str) -> str:
    return page.split(f'id="{heading_id}"', 1)[1].split("</section>", 1)[0]


def test_ops_desk_ranks_by_scorings_risk_with_components_sparklines_and_feed_freshness(
    migrated_database_url: str, db_sessions, scoring_url: str, ingest_url: str
):
    page = _ops_page(
        migrated_database_url,
        db_sessions,
        console_scoring_url=scoring_url,
        console_scoring_key=SCORING_KEY,
        console_ingest_url=ingest_url,
        console_ingest_key=INGEST_KEY,
    )
    risk = _section(page, "h-risk")
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", risk)
    assert rows == [("1", "antimony"), ("2", "gallium"), ("3", "tin")]
    gallium = risk.split("<td>gallium</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>60.0</td>" in gallium  # the latest score
    assert "price volatility: 40.0" in gallium
    assert "import concentration: 20.0" in gallium
    # Three snapshots read: a line of three points per indicator, the risk score's first.
    lines = re.findall(r'aria-label="([^"]+), 3"><polyline points="([^"]+)"', gallium)
    assert [label for label, _ in lines] == ["Risk score", "quoted lead time", "annualised price volatility"]
    assert all(len(points.split()) == 3 for _, points in lines)
    risk_line = dict(lines)["Risk score"].split()
    assert [p.split(",")[0] for p in risk_line] == ["2.0", "60.0", "118.0"]  # evenly spaced minutes over 116 px
    assert [p.split(",")[1] for p in risk_line] == ["22.0", "12.0", "2.0"]  # 40, 50, 60 from bottom to top
    tin = risk.split("<td>tin</td>", 1)[1].split("</tr>", 1)[0]
    assert "<polyline" not in tin  # one snapshot draws no line, its value is still shown
    feeds = _section(page, "h-feeds")
    assert feeds.index("mofcom-news") < feeds.index("lme-prices")  # the failing source first
    assert "HTTP 503" in feeds
    assert "<td>4</td>" in feeds
    assert 'class="error"' not in page


def test_ops_desk_says_when_scoring_is_away_or_unset_and_ingest_refuses_the_key(
    migrated_database_url: str, db_sessions, ingest_url: str
):
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    page = _ops_page(
        migrated_database_url,
        db_sessions,
        console_scoring_url=away,
        console_scoring_key=SCORING_KEY,
        console_ingest_url=ingest_url,
        console_ingest_key="not-the-key",
    )
    assert "Scoring did not answer (ConnectError); shown without it." in _section(page, "h-risk")
    assert "Ingest refused the console&#39;s read (HTTP 401): check its key." in _section(page, "h-feeds")
    assert "not-the-key" not in page
    assert SCORING_KEY not in page
    assert 'id="h-open"' in page  # the page's own data is still there
    unset = _ops_page(migrated_database_url, db_sessions)
    assert "Scoring is not configured for the console (MEWS_NOTIFY_CONSOLE_SCORING_URL)." in unset
    assert "Ingest is not configured for the console (MEWS_NOTIFY_CONSOLE_INGEST_URL)." in unset


def test_ops_desk_stops_waiting_for_a_scoring_that_does_not_answer(migrated_database_url: str, db_sessions):
    silent = ThreadingHTTPServer(("127.0.0.1", free_port()), BaseHTTPRequestHandler)  # accepts, never serves
    try:
        page = _ops_page(
            migrated_database_url,
            db_sessions,
            console_upstream_timeout_seconds=0.5,
            console_scoring_url=f"http://127.0.0.1:{silent.server_address[1]}",
        )
        assert "Scoring did not answer (" in page
    finally:
        silent.server_close()


def test_ops_desk_shows_the_ranking_without_sparklines_from_a_scoring_without_history(
    migrated_database_url: str, db_sessions
):
    older = FastAPI()  # a scoring of before GET /v1/history, and an ingest answering in another shape

    @older.get("/v1/risk")
    def risk() -> list[dict]:
        return [
            {
                "rank": 1,
                "material": "gallium",
                "risk_score": 61.5,
                "components": {"volatility": 61.5},
                "as_of": "2026-11-30T12:00:00Z",
                "withheld": False,
            }
        ]

    @older.get("/v1/sources")
    def sources() -> list[str]:
        return ["not", "a", "mapping"]

    with serving(older) as url:
        page = _ops_page(migrated_database_url, db_sessions, console_scoring_url=url, console_ingest_url=url)
    risk_section = _section(page, "h-risk")
    assert "Scoring could not answer the console (HTTP 404); shown without it." in risk_section
    assert "<td>61.5</td>" in risk_section
    assert "<polyline" not in risk_section
    assert "Ingest answered in an unexpected shape (Input should be an object)." in _section(page, "h-feeds")
