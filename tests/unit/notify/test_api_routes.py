"""Every /v1 route demands a key (but the signed acknowledgement and unsubscribe links) and is in OpenAPI."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.notify.api.app import ROUTERS, create_app
from services.notify.settings import NotifySettings
from services.notify.store.db import migrate

PUBLIC = {"/v1/ack/{token}", "/v1/unsubscribe/{token}"}


@pytest.fixture
def app(tmp_path):
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    return create_app(NotifySettings(database_url=url, bootstrap_admin_token="boot-token-for-unit-tests-012345"))


def _v1_routes(app) -> list[tuple[str, str]]:
    # Read from the routers the app includes (newer FastAPI nests included routers in app.routes).
    return [
        (method, route.path)
        for module in ROUTERS
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


def test_every_v1_route_refuses_a_caller_without_a_key(app) -> None:
    routes = _v1_routes(app)
    assert len(routes) >= 30
    with TestClient(app) as client:
        for method, path in routes:
            if path in PUBLIC:
                continue
            concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
            answer = client.request(method, concrete, json={})
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers.get("www-authenticate") == "Bearer"


def test_the_bootstrap_token_reaches_no_tenant_data(app) -> None:
    with TestClient(app, headers={"Authorization": "Bearer boot-token-for-unit-tests-012345"}) as client:
        for path in (
            "/v1/channels",
            "/v1/alerts",
            "/v1/deliveries",
            "/v1/products",
            "/v1/subscriptions",
            "/v1/silences",
            "/v1/users",
            "/v1/api-keys",
            "/v1/exposure?material=gallium",
        ):
            assert client.get(path).status_code == 403, path


def test_every_v1_route_is_in_the_openapi_document(app) -> None:
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert set(_v1_routes(app)) <= documented


def test_observability_endpoints_answer(app) -> None:
    with TestClient(app) as client:
        assert client.get("/healthz").json()["service"] == "notify"
        assert client.get("/readyz").status_code == 200
        assert "mews_build_info" in client.get("/metrics").text
