"""The role matrix of the README, walked against the real notify app: each operation with a member key and an
admin key, answered 403 exactly where the table says `no`."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.notify.api.app import create_app
from services.notify.settings import NotifySettings

from .apps import new_organisation, notify_app

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/v1/[^`]*)`[^|]* \| (yes|no) \| (yes|no)\b")


def role_matrix() -> list[tuple[str, str, bool, bool]]:
    """(method, path, member allowed, admin allowed) for each row of the README's role table."""
    section = README.read_text().split("### Roles", 1)[1].split("\n### ", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines()]
    return [(m[1], m[2], m[3] == "yes", m[4] == "yes") for m in rows if m]


MATRIX = role_matrix()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    app = notify_app(tmp_path_factory.mktemp("roles") / "notify.db")
    with TestClient(app) as client:
        admin = new_organisation(client)["api_key"]
        member = client.post(
            "/v1/api-keys", json={"name": "member", "role": "member"}, headers={"Authorization": f"Bearer {admin}"}
        ).json()["key"]
        yield client, {"member": member, "admin": admin}


def test_the_readme_table_covers_every_route_a_key_may_call() -> None:
    app = create_app(NotifySettings(database_url="sqlite://"))
    routes = {
        (method, re.sub(r"\{[^}]+\}", "{id}", path))
        for path, item in app.openapi()["paths"].items()
        for method in (m.upper() for m in item)
    }
    signed_link = {
        ("GET", "/v1/ack/{id}"),
        ("POST", "/v1/ack/{id}"),  # a capability, not a key
        ("GET", "/v1/unsubscribe/{id}"),
        ("POST", "/v1/unsubscribe/{id}"),
    }
    assert {(m, p) for m, p, *_ in MATRIX} == routes - signed_link


@pytest.mark.parametrize(("method", "path", "member", "admin"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_each_role_may_do_what_the_table_says(keys, method: str, path: str, member: bool, admin: bool) -> None:
    client, key_of = keys
    concrete = path.replace("{id}", str(uuid.uuid4()))
    if path == "/v1/exposure":
        concrete += "?material=gallium"
    for role, allowed in (("member", member), ("admin", admin)):
        # An empty body: a permitted caller gets past the role check to validation (422) or lookup (404).
        answer = client.request(
            method,
            concrete,
            json={} if method in ("POST", "PUT", "PATCH") else None,
            headers={"Authorization": f"Bearer {key_of[role]}"},
        )
        assert answer.status_code != 401, (role, answer.text)
        assert (answer.status_code != 403) is allowed, (role, method, path, answer.status_code, answer.text)


def test_a_member_cannot_mute_the_organisation(keys) -> None:
    client, key_of = keys
    member = {"Authorization": f"Bearer {key_of['member']}"}
    answer = client.post("/v1/silences", json={"ends_at": "2999-01-01T00:00:00Z", "comment": "quiet"}, headers=member)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/silences", headers=member).json() == []


def test_a_member_may_give_feedback_but_not_mute_from_it(keys) -> None:
    client, key_of = keys
    member = {"Authorization": f"Bearer {key_of['member']}"}
    unknown = f"/v1/alerts/{uuid.uuid4()}/feedback"
    # Past the role check a member reaches the lookup; muting is refused before it.
    assert client.post(unknown, json={"reason": "useful"}, headers=member).status_code == 404
    answer = client.post(unknown, json={"reason": "irrelevant", "mute": True}, headers=member)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
