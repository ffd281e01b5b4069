"""The notify API end to end over HTTP, on SQLite and PostgreSQL: what each role can do and what it sees."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from services.notify.ack_links import sign_ack_token
from services.notify.store.models import Alert, Notification
from tests.integration.notify.conftest import LINK_KEY

pytestmark = pytest.mark.integration


def _alert(
    db_sessions,
    organisation_id: str,
    *,
    fingerprint: str,
    severity: str = "warning",
    status: str = "firing",
    classification: str = "public",
    minutes_ago: int = 0,
) -> str:
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    with db_sessions() as session:
        row = Alert(
            organisation_id=organisation_id,
            fingerprint=fingerprint,
            material="gallium",
            rule="price-spike",
            severity=severity,
            status=status,
            starts_at=when,
            updated_at=when,
            summary=f"alert {fingerprint}",
            classification=classification,
            via=["material:gallium"],
            breach={"fingerprint": fingerprint},
        )
        session.add(row)
        session.commit()
        return row.id


def test_bootstrap_token_creates_organisations_and_nothing_else(api_url: str) -> None:
    from tests.integration.notify.conftest import BOOTSTRAP_TOKEN

    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}) as bootstrap:
        created = bootstrap.post(
            "/v1/organisations",
            json={
                "name": "Ministerie van EZK",
                "kind": "ministry",
                "clearance": "government",
                "platform_admin": True,
                "admin_email": "Crisis@EZK.example",
            },
        )
        assert created.status_code == 201
        assert created.json()["api_key"].startswith("mews_")
        assert bootstrap.get("/v1/channels").status_code == 403
    platform_key = created.json()["api_key"]
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {platform_key}"}) as platform:
        company = platform.post("/v1/organisations", json={"name": "Acme", "kind": "company"})
        assert company.status_code == 201
        names = sorted(o["name"] for o in platform.get("/v1/organisations").json())
        assert names == ["Acme", "Ministerie van EZK"]
        users = platform.get("/v1/users").json()
        assert [(u["email"], u["role"]) for u in users] == [("crisis@ezk.example", "admin")]
        # The key is never shown again.
        assert all("key" not in k and "key_hash" not in k for k in platform.get("/v1/api-keys").json())


def test_requests_without_a_valid_key_are_refused(api_url: str, make_tenant) -> None:
    acme = make_tenant("Acme")
    assert httpx.get(f"{api_url}/v1/channels").status_code == 401
    assert (
        httpx.get(f"{api_url}/v1/channels", headers={"Authorization": "Bearer mews_nonsense-key-000"}).status_code
        == 401
    )
    assert httpx.get(f"{api_url}/v1/channels", headers={"Authorization": f"Bearer {acme.key}x"}).status_code == 401
    second = acme.http.post("/v1/api-keys", json={"name": "temp", "role": "admin"}).json()
    with acme.client_with_key(second["key"]) as temp:
        assert temp.get("/v1/channels").status_code == 200
        acme.http.delete(f"/v1/api-keys/{second['id']}")
        assert temp.get("/v1/channels").status_code == 401


def test_webhook_secret_is_returned_once_and_signs_verifiably(make_tenant, caplog) -> None:
    acme = make_tenant("Acme")
    caplog.set_level(logging.DEBUG)
    created = acme.http.post("/v1/channels", json={"kind": "webhook", "target": "http://127.0.0.1:8999/hooks"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    # The secret works with the Standard Webhooks library as a receiver would use it.
    signer = Webhook(secret)
    sent_at = datetime.now(UTC)
    signature = signer.sign("msg_1", sent_at, '{"ok":true}')
    assert signer.verify(
        '{"ok":true}',
        {"webhook-id": "msg_1", "webhook-timestamp": str(int(sent_at.timestamp())), "webhook-signature": signature},
    ) == {"ok": True}

    channel_id = created.json()["id"]
    listed = acme.http.get("/v1/channels").text + acme.http.get(f"/v1/channels/{channel_id}").text
    assert secret not in listed
    assert "secret" not in acme.http.get(f"/v1/channels/{channel_id}").json()
    rotated = acme.http.post(f"/v1/channels/{channel_id}/rotate-secret").json()["secret"]
    assert rotated.startswith("whsec_")
    assert rotated != secret
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert secret not in logged
    assert rotated not in logged
    assert acme.key not in logged


def test_a_given_webhook_secret_is_kept_and_a_bad_one_refused(make_tenant) -> None:
    acme = make_tenant("Acme")
    good = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    answer = acme.http.post("/v1/channels", json={"kind": "webhook", "target": "http://127.0.0.1:1/h", "secret": good})
    assert answer.status_code == 201
    assert answer.json()["secret"] == good
    bad = acme.http.post(
        "/v1/channels", json={"kind": "webhook", "target": "http://127.0.0.1:1/h", "secret": "hunter2"}
    )
    assert bad.status_code == 422
    assert "whsec_" in bad.json()["detail"]


def test_email_targets_with_header_injection_are_refused(make_tenant) -> None:
    acme = make_tenant("Acme")
    answer = acme.http.post("/v1/channels", json={"kind": "email", "target": "ops@acme.example\r\nBcc: x@evil.example"})
    assert answer.status_code == 422


def test_firing_alerts_list_their_acknowledgement_and_ack_is_idempotent(make_tenant, db_sessions) -> None:
    acme = make_tenant("Acme")
    firing = _alert(db_sessions, acme.id, fingerprint="fp-1", severity="critical")
    _alert(db_sessions, acme.id, fingerprint="fp-2", status="resolved", minutes_ago=5)
    listed = acme.http.get("/v1/alerts", params={"status": "firing"}).json()
    assert [(a["id"], a["acknowledged"]) for a in listed] == [(firing, False)]

    first = acme.http.post(f"/v1/alerts/{firing}/ack").json()
    assert first["acknowledged"] is True
    assert first["acknowledged_by"] == "api-key:first admin key"
    again = acme.http.post(f"/v1/alerts/{firing}/ack").json()
    assert again["acknowledged_at"] == first["acknowledged_at"]
    assert [a["acknowledged"] for a in acme.http.get("/v1/alerts?status=firing").json()] == [True]
    assert len(acme.http.get("/v1/alerts").json()) == 2


def test_alerts_above_the_organisations_clearance_stay_hidden(make_tenant, db_sessions) -> None:
    acme = make_tenant("Acme", clearance="public")
    hidden = _alert(db_sessions, acme.id, fingerprint="fp-secret", classification="government")
    assert acme.http.get("/v1/alerts").json() == []
    assert acme.http.get(f"/v1/alerts/{hidden}").status_code == 404


def test_signed_ack_link_asks_then_acknowledges_and_refuses_forgery_and_expiry(make_tenant, db_sessions) -> None:
    acme = make_tenant("Acme")
    alert_id = _alert(db_sessions, acme.id, fingerprint="fp-link")
    soon = datetime.now(UTC) + timedelta(hours=1)
    good = sign_ack_token(LINK_KEY, alert_id, acme.id, soon)
    expired = sign_ack_token(LINK_KEY, alert_id, acme.id, datetime.now(UTC) - timedelta(seconds=1))
    wrong_key = sign_ack_token("some-other-key-of-sufficient-length-0000", alert_id, acme.id, soon)
    tampered = good.rsplit(".", 2)[0] + f".{int(soon.timestamp()) + 86400}." + good.rsplit(".", 1)[1]
    anonymous = httpx.Client(base_url=str(acme.http.base_url))
    for bad in (expired, wrong_key, tampered, "not-a-token"):
        assert anonymous.get(f"/v1/ack/{bad}").status_code == 403, bad
        assert anonymous.post(f"/v1/ack/{bad}").status_code == 403, bad
    # Following the link (as a mail scanner does) only shows the confirmation.
    confirm = anonymous.get(f"/v1/ack/{good}")
    assert confirm.status_code == 200
    assert '<form method="post">' in confirm.text
    assert acme.http.get(f"/v1/alerts/{alert_id}").json()["acknowledged"] is False
    page = anonymous.post(f"/v1/ack/{good}")
    assert page.status_code == 200
    assert "acknowledged" in page.text
    state = acme.http.get(f"/v1/alerts/{alert_id}").json()
    assert state["acknowledged"] is True
    assert state["acknowledged_by"] == "email-link"


def test_failed_delivery_replays_with_the_same_webhook_id(make_tenant, db_sessions) -> None:
    acme = make_tenant("Acme")
    channel = acme.http.post("/v1/channels", json={"kind": "webhook", "target": "http://127.0.0.1:1/h"}).json()
    with db_sessions() as session:
        failed = Notification(
            organisation_id=acme.id,
            channel_id=channel["id"],
            kind="alert",
            status="failed",
            attempts=12,
            last_error="HTTP 503",
            payload={"alerts": []},
        )
        delivered = Notification(
            organisation_id=acme.id, channel_id=channel["id"], kind="alert", status="delivered", attempts=1
        )
        session.add_all([failed, delivered])
        session.commit()
        failed_id, webhook_id, delivered_id = failed.id, failed.webhook_id, delivered.id

    assert [d["id"] for d in acme.http.get("/v1/deliveries", params={"status": "failed"}).json()] == [failed_id]
    replayed = acme.http.post(f"/v1/deliveries/{failed_id}/replay")
    assert replayed.status_code == 200
    body = replayed.json()
    assert (body["status"], body["attempts"], body["webhook_id"], body["last_error"]) == (
        "pending",
        0,
        webhook_id,
        None,
    )
    assert acme.http.get("/v1/deliveries?status=failed").json() == []
    assert acme.http.post(f"/v1/deliveries/{delivered_id}/replay").status_code == 409

    acme.http.patch(f"/v1/channels/{channel['id']}", json={"enabled": False})
    with db_sessions() as session:
        session.get(Notification, failed_id).status = "failed"
        session.commit()
    refused = acme.http.post(f"/v1/deliveries/{failed_id}/replay")
    assert refused.status_code == 409
    assert "disabled" in refused.json()["detail"]


def test_silences_are_created_listed_as_active_and_expired(make_tenant) -> None:
    acme = make_tenant("Acme")
    in_two_hours = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    created = acme.http.post(
        "/v1/silences",
        json={
            "material": "gallium",
            "severity": "warning",
            "comment": "known, supplier switched",
            "ends_at": in_two_hours,
        },
    )
    assert created.status_code == 201
    assert created.json()["active"] is True
    assert [s["id"] for s in acme.http.get("/v1/silences?active=true").json()] == [created.json()["id"]]
    expired = acme.http.delete(f"/v1/silences/{created.json()['id']}").json()
    assert expired["active"] is False
    assert acme.http.get("/v1/silences?active=true").json() == []
    assert acme.http.post("/v1/silences", json={"ends_at": in_two_hours}).status_code == 422
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert acme.http.post("/v1/silences", json={"rule": "r", "ends_at": past}).status_code == 422
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert acme.http.post("/v1/silences", json={"rule": "r", "ends_at": naive}).status_code == 422


def test_subscriptions_by_material_and_by_product(make_tenant) -> None:
    acme = make_tenant("Acme")
    channel = acme.http.post(
        "/v1/channels", json={"kind": "email", "target": "ops@acme.example", "language": "nl", "mode": "digest"}
    ).json()["id"]
    product = acme.http.post(
        "/v1/products",
        json={
            "name": "Radar module",
            "bom": [
                {"component": "GaN chip", "material": "gallium", "share": 0.02, "origin_country": "CN"},
                {"component": "Heat sink", "material": "copper", "quantity": 1.5, "unit": "kg"},
            ],
        },
    ).json()
    assert [line["component"] for line in product["bom"]] == ["GaN chip", "Heat sink"]
    by_product = acme.http.post(
        "/v1/subscriptions", json={"product_id": product["id"], "min_severity": "critical", "channel_ids": [channel]}
    )
    by_material = acme.http.post("/v1/subscriptions", json={"material": "germanium", "channel_ids": [channel]})
    assert by_product.status_code == 201
    assert by_material.status_code == 201
    assert (
        acme.http.post(
            "/v1/subscriptions", json={"material": "gallium", "product_id": product["id"], "channel_ids": [channel]}
        ).status_code
        == 422
    )
    assert (
        acme.http.post("/v1/subscriptions", json={"material": "Not A Material!", "channel_ids": [channel]}).status_code
        == 422
    )
    listed = acme.http.get("/v1/subscriptions").json()
    assert {(s["material"], s["product_id"], s["min_severity"]) for s in listed} == {
        (None, product["id"], "critical"),
        ("germanium", None, "warning"),
    }
    # Deleting the product takes its subscription with it.
    assert acme.http.delete(f"/v1/products/{product['id']}").status_code == 204
    assert [s["material"] for s in acme.http.get("/v1/subscriptions").json()] == ["germanium"]


def test_exposure_answers_government_cleared_ministries_only(make_tenant) -> None:
    ministry = make_tenant("Ministerie van Defensie", kind="ministry", clearance="government")
    restricted_agency = make_tenant("RVO", kind="agency", clearance="restricted")
    cleared_company = make_tenant("Defence Prime BV", kind="company", clearance="government")
    radar = make_tenant("Radar Works BV")
    channel = radar.http.post("/v1/channels", json={"kind": "email", "target": "a@radar.example"}).json()["id"]
    radar.http.post(
        "/v1/products",
        json={
            "name": "Radar module",
            "bom": [
                {
                    "component": "GaN chip",
                    "material": "gallium",
                    "share": 0.02,
                    "origin_country": "CN",
                    "supplier": "X",
                },
                {"component": "GaAs amplifier", "material": "gallium", "share": 0.01, "origin_country": "DE"},
            ],
        },
    )
    chips = make_tenant("Chip Foundry BV")
    chip_channel = chips.http.post("/v1/channels", json={"kind": "email", "target": "a@chips.example"}).json()["id"]
    chips.http.post("/v1/subscriptions", json={"material": "gallium", "channel_ids": [chip_channel]})
    radar.http.post("/v1/subscriptions", json={"material": "germanium", "channel_ids": [channel]})

    for refused in (restricted_agency, cleared_company, radar):
        assert refused.http.get("/v1/exposure", params={"material": "gallium"}).status_code == 403

    everything = ministry.http.get("/v1/exposure", params={"material": "gallium"}).json()
    # A subscriber follows the material; only a BOM line shows exposure, so the two are kept apart.
    assert [o["name"] for o in everything["direct_subscribers"]] == ["Chip Foundry BV"]
    assert [o["name"] for o in everything["organisations"]] == ["Radar Works BV"]
    paths = everything["organisations"][0]["products"][0]["paths"]
    assert [(p["path"], p["share"], p["origin_country"]) for p in paths] == [
        ("Radar module>GaAs amplifier", 0.01, "DE"),
        ("Radar module>GaN chip", 0.02, "CN"),
    ]

    from_china = ministry.http.get("/v1/exposure", params={"material": "gallium", "country": "CN"}).json()
    assert [o["name"] for o in from_china["organisations"]] == ["Radar Works BV"]
    assert [p["component"] for p in from_china["organisations"][0]["products"][0]["paths"]] == ["GaN chip"]
    assert ministry.http.get("/v1/exposure", params={"material": "gallium", "country": "cn"}).status_code == 422
