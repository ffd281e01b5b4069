"""Security headers on every answer of every service, no-store where secrets travel, and no server banner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from services.notify.ack_links import sign_ack_token
from services.notify.store.db import create_db_engine, session_factory
from services.notify.store.models import Alert

from .apps import BOOTSTRAP, INGEST_KEY, READ_KEY, ingest_app, new_organisation, notify_app, scoring_app

API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def assert_hardened(answer, policy: str = API_POLICY) -> None:
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["content-security-policy"] == policy
    assert answer.headers["cache-control"] == "no-store"
    assert "server" not in answer.headers  # in-process; the launchers' uvicorn is asked below


@pytest.fixture
def apps(tmp_path: Path) -> dict[str, TestClient]:
    return {
        "ingest": TestClient(ingest_app("127.0.0.1:1", "", tmp_path / "ingest")),
        "scoring": TestClient(scoring_app()),
        "notify": TestClient(notify_app(tmp_path / "notify.db")),
    }


@pytest.mark.parametrize("service", ["ingest", "scoring", "notify"])
@pytest.mark.parametrize(
    "path", ["/healthz", "/metrics", "/openapi.json", "/v1/nowhere", "/v1/sources", "/v1/materials", "/v1/alerts"]
)
def test_every_answer_carries_the_headers(apps, service: str, path: str) -> None:
    key = {"ingest": INGEST_KEY, "scoring": READ_KEY, "notify": "mews_wrongwrongwrong"}[service]
    assert_hardened(apps[service].get(path, headers={"Authorization": f"Bearer {key}"}))


@pytest.mark.parametrize("service", ["ingest", "scoring", "notify"])
def test_the_docs_may_load_swagger_but_not_be_framed(apps, service: str) -> None:
    answer = apps[service].get("/docs")
    assert answer.status_code == 200
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def test_responses_carrying_secrets_are_not_stored(tmp_path: Path) -> None:
    with TestClient(notify_app(tmp_path / "notify.db", allow_private_webhook_targets=True)) as client:
        created = client.post(
            "/v1/organisations",
            json={"name": "Acme", "kind": "company"},
            headers={"Authorization": f"Bearer {BOOTSTRAP}"},
        )
        assert created.headers["cache-control"] == "no-store"
        admin = {"Authorization": f"Bearer {created.json()['api_key']}"}
        key = client.post("/v1/api-keys", json={"name": "ci"}, headers=admin)
        assert key.status_code == 201
        assert key.headers["cache-control"] == "no-store"
        channel = client.post(
            "/v1/channels", json={"kind": "webhook", "target": "http://127.0.0.1:9/hook"}, headers=admin
        )
        assert channel.json()["secret"].startswith("whsec_")
        assert_hardened(channel)
        rotated = client.post(f"/v1/channels/{channel.json()['id']}/rotate-secret", headers=admin)
        assert_hardened(rotated)


def test_the_acknowledgement_page_cannot_be_framed_and_posts_only_to_itself(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    app = notify_app(tmp_path / "notify.db", link_signing_key="x" * 40)
    with TestClient(app) as client:
        organisation = new_organisation(client)["organisation"]["id"]
        sessions = session_factory(create_db_engine(f"sqlite:///{tmp_path / 'notify.db'}"))
        now = datetime.now(UTC)
        with sessions() as session:
            alert = Alert(
                organisation_id=organisation,
                fingerprint="f",
                material="gallium",
                rule="price-jump",
                severity="warning",
                status="firing",
                classification="public",
                summary="<b>jump</b>",
                starts_at=now,
                updated_at=now,
                via=[],
                breach={},
            )
            session.add(alert)
            session.commit()
            alert_id = alert.id
        token = sign_ack_token("x" * 40, alert_id, organisation, now + timedelta(days=1))
        page = client.get(f"/v1/ack/{token}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert_hardened(page, "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    assert "<b>jump</b>" not in page.text


def test_the_ingest_launcher_drops_the_server_banner(monkeypatch, tmp_path: Path) -> None:
    import uvicorn

    from services.ingest.cli import ingest

    started: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(options))
    monkeypatch.setenv("MEWS_INGEST_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(ingest, ["api"])
    assert result.exit_code == 0, result.output
    assert started["server_header"] is False
