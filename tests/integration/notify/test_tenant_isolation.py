"""One organisation can neither read nor change another's data, for every resource, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.ack_links import sign_ack_token
from services.notify.store.models import Alert, Notification
from tests.integration.notify.conftest import LINK_KEY

pytestmark = pytest.mark.integration


def _seed_alert_and_failed_delivery(db_sessions, organisation_id: str, channel_id: str) -> tuple[str, str]:
    now = datetime.now(UTC)
    with db_sessions() as session:
        alert = Alert(
            organisation_id=organisation_id,
            fingerprint="fp-ga-price",
            material="gallium",
            rule="price-spike",
            severity="critical",
            status="firing",
            starts_at=now,
            updated_at=now,
            summary="Gallium price up 40 %",
            classification="public",
            via=["material:gallium"],
        )
        session.add(alert)
        session.flush()
        notification = Notification(
            organisation_id=organisation_id,
            channel_id=channel_id,
            kind="alert",
            alert_ids=[alert.id],
            group_key="g",
            status="failed",
            attempts=12,
            last_error="HTTP 500",
        )
        session.add(notification)
        session.commit()
        return alert.id, notification.id


@pytest.fixture
def owner_data(make_tenant, db_sessions) -> dict:
    """Organisation A with one of everything: user, key, channels, product, subscription, silence, alert, delivery."""
    a = make_tenant("Acme Radar BV")
    ids: dict = {"tenant": a}
    ids["user"] = a.http.post("/v1/users", json={"email": "ops@acme.example"}).json()["id"]
    ids["key"] = a.http.post("/v1/api-keys", json={"name": "ci"}).json()["id"]
    ids["email_channel"] = a.http.post("/v1/channels", json={"kind": "email", "target": "ops@acme.example"}).json()[
        "id"
    ]
    ids["webhook_channel"] = a.http.post(
        "/v1/channels", json={"kind": "webhook", "target": "http://127.0.0.1:9/hook"}
    ).json()["id"]
    ids["product"] = a.http.post(
        "/v1/products",
        json={"name": "Radar module", "bom": [{"component": "GaN chip", "material": "gallium", "share": 0.02}]},
    ).json()["id"]
    ids["subscription"] = a.http.post(
        "/v1/subscriptions", json={"product_id": ids["product"], "channel_ids": [ids["email_channel"]]}
    ).json()["id"]
    ids["silence"] = a.http.post(
        "/v1/silences", json={"material": "gallium", "ends_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}
    ).json()["id"]
    ids["alert"], ids["delivery"] = _seed_alert_and_failed_delivery(db_sessions, a.id, ids["webhook_channel"])
    return ids


def test_another_organisation_reads_none_of_its_rows(owner_data, make_tenant) -> None:
    b = make_tenant("Other Company BV")
    a_id = owner_data["tenant"].id
    for path in (
        f"/v1/organisations/{a_id}",
        f"/v1/users/{owner_data['user']}",
        f"/v1/channels/{owner_data['email_channel']}",
        f"/v1/channels/{owner_data['webhook_channel']}",
        f"/v1/products/{owner_data['product']}",
        f"/v1/subscriptions/{owner_data['subscription']}",
        f"/v1/silences/{owner_data['silence']}",
        f"/v1/alerts/{owner_data['alert']}",
        f"/v1/deliveries/{owner_data['delivery']}",
    ):
        answer = b.http.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
    a_ids = {v for k, v in owner_data.items() if k != "tenant"} | {a_id}
    for path in (
        "/v1/organisations",
        "/v1/users",
        "/v1/api-keys",
        "/v1/channels",
        "/v1/products",
        "/v1/subscriptions",
        "/v1/silences",
        "/v1/alerts",
        "/v1/alerts?status=firing",
        "/v1/deliveries",
        "/v1/deliveries?status=failed",
    ):
        answer = b.http.get(path)
        assert answer.status_code == 200, path
        assert not {row["id"] for row in answer.json()} & a_ids, path


def test_another_organisation_changes_none_of_its_rows(owner_data, make_tenant) -> None:
    b = make_tenant("Other Company BV")
    d = owner_data
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    attempts = [
        ("PATCH", f"/v1/users/{d['user']}", {"role": "admin"}),
        ("DELETE", f"/v1/users/{d['user']}", None),
        ("DELETE", f"/v1/api-keys/{d['key']}", None),
        ("PATCH", f"/v1/channels/{d['email_channel']}", {"target": "thief@other.example"}),
        ("POST", f"/v1/channels/{d['webhook_channel']}/rotate-secret", None),
        ("DELETE", f"/v1/channels/{d['email_channel']}", None),
        ("PUT", f"/v1/products/{d['product']}", {"name": "x", "bom": [{"component": "c", "material": "tin"}]}),
        ("DELETE", f"/v1/products/{d['product']}", None),
        ("PATCH", f"/v1/subscriptions/{d['subscription']}", {"min_severity": "critical"}),
        ("DELETE", f"/v1/subscriptions/{d['subscription']}", None),
        ("DELETE", f"/v1/silences/{d['silence']}", None),
        ("POST", f"/v1/alerts/{d['alert']}/ack", None),
        ("POST", f"/v1/deliveries/{d['delivery']}/replay", None),
    ]
    for method, path, body in attempts:
        answer = b.http.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)

    # Nor can it borrow A's channels or products for its own subscriptions.
    assert (
        b.http.post("/v1/subscriptions", json={"material": "gallium", "channel_ids": [d["email_channel"]]}).status_code
        == 422
    )
    b_channel = b.http.post("/v1/channels", json={"kind": "email", "target": "b@other.example"}).json()["id"]
    assert (
        b.http.post("/v1/subscriptions", json={"product_id": d["product"], "channel_ids": [b_channel]}).status_code
        == 422
    )
    assert b.http.post("/v1/silences", json={"material": "gallium", "ends_at": future}).status_code == 201

    a = d["tenant"]
    assert a.http.get(f"/v1/users/{d['user']}").json()["role"] == "member"
    assert a.http.get(f"/v1/channels/{d['email_channel']}").json()["target"] == "ops@acme.example"
    assert a.http.get(f"/v1/products/{d['product']}").json()["name"] == "Radar module"
    assert a.http.get(f"/v1/subscriptions/{d['subscription']}").json()["min_severity"] == "warning"
    assert a.http.get(f"/v1/silences/{d['silence']}").json()["active"] is True
    assert a.http.get(f"/v1/alerts/{d['alert']}").json()["acknowledged"] is False
    assert a.http.get(f"/v1/deliveries/{d['delivery']}").json()["status"] == "failed"
    assert [k["revoked_at"] for k in a.http.get("/v1/api-keys").json() if k["id"] == d["key"]] == [None]
    assert len(a.http.get("/v1/silences").json()) == 1


def test_an_ack_link_is_bound_to_its_organisation(owner_data, make_tenant) -> None:
    b = make_tenant("Other Company BV")
    expires = datetime.now(UTC) + timedelta(hours=1)
    forged = sign_ack_token(LINK_KEY, owner_data["alert"], b.id, expires)
    assert b.http.get(f"/v1/ack/{forged}").status_code == 403
    assert b.http.post(f"/v1/ack/{forged}").status_code == 403
    a = owner_data["tenant"]
    assert a.http.get(f"/v1/alerts/{owner_data['alert']}").json()["acknowledged"] is False


def test_a_member_key_cannot_do_admin_work(owner_data) -> None:
    a = owner_data["tenant"]
    member_key = a.http.post("/v1/api-keys", json={"name": "member", "role": "member"}).json()["key"]
    with a.client_with_key(member_key) as member:
        assert member.post("/v1/channels", json={"kind": "email", "target": "x@acme.example"}).status_code == 403
        assert member.post("/v1/api-keys", json={"name": "escalate", "role": "admin"}).status_code == 403
        assert member.patch(f"/v1/users/{owner_data['user']}", json={"role": "admin"}).status_code == 403
        assert member.post("/v1/organisations", json={"name": "x", "kind": "company"}).status_code == 403
        assert member.post(f"/v1/deliveries/{owner_data['delivery']}/replay").status_code == 403
        # Subscriptions decide what the organisation hears: a member may not change them (tests/security walks
        # the whole role matrix) ...
        assert (
            member.post(
                "/v1/subscriptions", json={"material": "germanium", "channel_ids": [owner_data["email_channel"]]}
            ).status_code
            == 403
        )
        # ... but members do the daily work: they read and acknowledge.
        assert member.post(f"/v1/alerts/{owner_data['alert']}/ack").status_code == 200
        assert member.get("/v1/subscriptions").status_code == 200


def test_an_organisation_admin_cannot_create_organisations(make_tenant) -> None:
    company = make_tenant("Acme")
    assert (
        company.http.post(
            "/v1/organisations", json={"name": "Fake ministry", "kind": "ministry", "clearance": "government"}
        ).status_code
        == 403
    )
    assert [o["id"] for o in company.http.get("/v1/organisations").json()] == [company.id]
