"""The three mews apps, built in-process as their launchers build them, with keys the security tests hold."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.ingest.api import create_app as create_ingest_app
from services.ingest.settings import IngestSettings
from services.notify.api.app import create_app as create_notify_app
from services.notify.settings import NotifySettings
from services.notify.store.db import migrate
from services.scoring.api import create_api as create_scoring_api
from services.scoring.settings import ScoringSettings
from services.scoring.view import MaterialsView
from shared.events import IndicatorSnapshot

INGEST_KEY = "security-suite-ingest-key-0123456789abcdef"
READ_KEY = "security-suite-read-key-0123456789abcdef"
BOOTSTRAP = "security-suite-bootstrap-token-9f8e7d6c5b4a3210"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ingest_app(bootstrap: str, namespace: str, state_dir: Path, **overrides: object) -> FastAPI:
    settings = IngestSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_namespace=namespace,
        state_dir=state_dir,
        api_keys=f"{digest(INGEST_KEY)}:ingest",
        **overrides,
    )
    return create_ingest_app(settings)


def scoring_app(**overrides: object) -> FastAPI:
    view = MaterialsView()
    view.apply(
        IndicatorSnapshot(
            material="gallium",
            as_of=datetime(2026, 11, 1, tzinfo=UTC),
            indicators={"price": 10.0},
            risk_score=50.0,
            components={"volatility": 5.0},
        )
    )
    return create_scoring_api(ScoringSettings(api_keys=f"{digest(READ_KEY)}:government", **overrides), view)


def notify_app(database: Path, **overrides: object) -> FastAPI:
    url = f"sqlite:///{database}"
    migrate(url)
    return create_notify_app(NotifySettings(database_url=url, bootstrap_admin_token=BOOTSTRAP, **overrides))


def new_organisation(client: TestClient, name: str = "Acme") -> dict:
    """An organisation created with the bootstrap token; its first admin key is in `api_key`."""
    answer = client.post(
        "/v1/organisations", json={"name": name, "kind": "company"}, headers={"Authorization": f"Bearer {BOOTSTRAP}"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()
