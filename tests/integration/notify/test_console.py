"""The console over HTTP on SQLite and PostgreSQL: sessions, CSRF, roles, and one organisation never reaching
another's pages or objects, whatever URL it types."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.notify.api.app import create_app
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.notify.store.keys import issue_api_key
from tests.integration.notify.chat import add_chat
from tests.integration.notify.world import add_email, add_org, add_product, add_webhook, subscribe, verified

pytestmark = pytest.mark.integration


@dataclass
class Tenant:
    org: models.Organisation
    admin_key: str
    member_key: str
    alert_id: str
    product_id: str
    channel_id: str
    delivery_id: str


def _tenant(s, name: str, fingerprint: str) -> Tenant:
    org = add_org(s, name, clearance="public")
    _, admin_key = issue_api_key(s, org.id, name="admin", role="admin")
    _, member_key = issue_api_key(s, org.id, name="member", role="member")
    hook = add_webhook(s, org, "http://127.0.0.1:9/hook")
    product = add_product(s, org, f"{name} radar", [("GaN chip", "gallium")])
    subscribe(s, org, [hook], material="gallium")
    now = datetime.now(UTC)
    alert = models.Alert(
        organisation_id=org.id,
        fingerprint=fingerprint,
        material="gallium",
        rule="price_spike",
        severity="warning",
        status="firing",
        starts_at=now - timedelta(hours=1),
        updated_at=now,
        summary=f"{name} secret summary",
        breach={},
        via=["material:gallium"],
    )
    s.add(alert)
    s.flush()
    delivery = models.Notification(
        organisation_id=org.id,
        channel_id=hook.id,
        kind="alert",
        alert_ids=[alert.id],
        status="failed",
        last_error="boom",
    )
    s.add(delivery)
    s.flush()
    return Tenant(org, admin_key, member_key, alert.id, product.id, hook.id, delivery.id)


@pytest.fixture
def console(migrated_database_url: str, db_sessions) -> Iterator[tuple[TestClient, Tenant, Tenant, str]]:
    settings = NotifySettings(database_url=migrated_database_url, allow_private_webhook_targets=True)
    with unit_of_work(db_sessions) as s:
        acme, rival = _tenant(s, "Acme BV", "fp-acme"), _tenant(s, "Rival BV", "fp-rival")
        ministry = add_org(s, "Ministry", clearance="government", kind="ministry")
        _, ministry_key = issue_api_key(s, ministry.id, name="ministry", role="member")
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, acme, rival, ministry_key


def _csrf(client: TestClient, path: str = "/console/sign-in") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def _sign_in(client: TestClient, key: str) -> None:
    answer = client.post(
        "/console/sign-in", data={"csrf": _csrf(client), "api_key": key, "next": "/console"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def test_session_cookie_is_httponly_lax_signed_and_names_no_key(console):
    client, acme, _, _ = console
    client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"csrf": _csrf(client), "api_key": acme.admin_key, "next": "/console/alerts"},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert answer.headers["location"] == "/console/alerts"
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # development; test_cookie_is_secure_outside_development covers the rest
    assert acme.admin_key not in cookie
    assert acme.admin_key[5:13] not in cookie
    forged = client.cookies.get("mews_console").replace(".", ".x", 1)
    client.cookies.set("mews_console", forged, path="/console")
    assert client.get("/console/alerts", follow_redirects=False).status_code == 303


def test_cookie_is_secure_outside_development(migrated_database_url: str, db_sessions):
    settings = NotifySettings(
        database_url=migrated_database_url,
        environment="production",
        smtp_starttls=True,
        link_signing_key="a-long-random-production-signing-key-0123456789",
    )
    with TestClient(create_app(settings), base_url="https://127.0.0.1") as client:
        assert "Secure" in client.get("/console/sign-in").headers["set-cookie"]


def test_wrong_key_and_missing_csrf_are_refused(console):
    client, acme, _, _ = console
    csrf = _csrf(client)
    assert client.post("/console/sign-in", data={"csrf": csrf, "api_key": "mews_notavalidkey123"}).status_code == 401
    assert client.post("/console/sign-in", data={"api_key": acme.admin_key}).status_code == 403
    _sign_in(client, acme.admin_key)
    for path in (
        f"/console/alerts/{acme.alert_id}/ack",
        "/console/sign-out",
        f"/console/deliveries/{acme.delivery_id}/replay",
    ):
        assert client.post(path, data={"csrf": "forged"}).status_code == 403, path
    assert "Acme BV secret summary" in client.get("/console/alerts").text  # still signed in, nothing acknowledged
    assert "acknowledge" in client.get(f"/console/alerts/{acme.alert_id}").text.lower()


def test_an_organisation_never_sees_or_acts_on_another_organisations_objects(console, db_sessions):
    client, acme, rival, _ = console
    _sign_in(client, acme.admin_key)
    csrf = _csrf(client, "/console/alerts")
    pages = {
        path: client.get(path).text
        for path in ("/console/alerts", "/console/subscriptions", "/console/products", "/console/deliveries")
    }
    assert "Acme BV secret summary" in pages["/console/alerts"]
    assert all("Rival" not in text for text in pages.values())
    assert client.get(f"/console/alerts/{rival.alert_id}").status_code == 404
    assert client.get(f"/console/alerts/{acme.alert_id}").status_code == 200
    for path in (
        f"/console/alerts/{rival.alert_id}/ack",
        f"/console/alerts/{rival.alert_id}/feedback",
        f"/console/channels/{rival.channel_id}/rotate-secret",
        f"/console/deliveries/{rival.delivery_id}/replay",
    ):
        answer = client.post(path, data={"csrf": csrf, "reason": "useful"})
        assert answer.status_code in (404, 422), (path, answer.status_code)
    answer = client.post(
        "/console/subscriptions",
        data={"csrf": csrf, "target": f"product:{rival.product_id}", "channel_ids": [acme.channel_id]},
    )
    assert answer.status_code == 422
    assert "unknown product id" in answer.text
    answer = client.post(
        "/console/subscriptions", data={"csrf": csrf, "target": "material:germanium", "channel_ids": [rival.channel_id]}
    )
    assert answer.status_code == 422
    assert "unknown channel id" in answer.text
    with unit_of_work(db_sessions) as s:
        alert = s.get(models.Alert, rival.alert_id)
        assert alert.acknowledged_at is None
        assert s.query(models.AlertFeedback).count() == 0
        assert s.get(models.Notification, rival.delivery_id).status == "failed"
        assert s.query(models.Subscription).count() == 2  # the two of the fixture, nothing new


def test_members_act_on_alerts_but_only_admins_change_configuration(console, db_sessions):
    client, acme, _, _ = console
    _sign_in(client, acme.member_key)
    csrf = _csrf(client, "/console/alerts")
    answer = client.post(f"/console/alerts/{acme.alert_id}/ack", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    answer = client.post(
        f"/console/alerts/{acme.alert_id}/feedback",
        data={"csrf": csrf, "reason": "useful", "comment": "on it"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    refused = {
        "/console/channels": {"kind": "email", "target": "x@acme.test"},
        "/console/subscriptions": {"target": "material:gallium", "channel_ids": [acme.channel_id]},
        f"/console/channels/{acme.channel_id}/rotate-secret": {},
        f"/console/deliveries/{acme.delivery_id}/replay": {},
    }
    for path, data in refused.items():
        assert client.post(path, data={"csrf": csrf, **data}).status_code == 403, path
    assert (
        client.post(
            "/console/products/upload",
            data={"csrf": csrf},
            files={"file": ("b.csv", b"product,component,material\nP,c,gallium\n")},
        ).status_code
        == 403
    )
    assert client.get("/console/crisis").status_code == 403
    assert client.get("/console/ops").status_code == 403
    with unit_of_work(db_sessions) as s:
        alert = s.get(models.Alert, acme.alert_id)
        assert alert.acknowledged_by == "api-key:member"
        [given] = s.query(models.AlertFeedback).all()
        assert (given.reason, given.comment, given.organisation_id) == ("useful", "on it", acme.org.id)


def test_revoking_the_key_ends_the_session(console, db_sessions):
    client, acme, _, _ = console
    _sign_in(client, acme.member_key)
    assert client.get("/console/alerts").status_code == 200
    with unit_of_work(db_sessions) as s:
        key = s.query(models.ApiKey).filter_by(organisation_id=acme.org.id, name="member").one()
        key.revoked_at = datetime.now(UTC)
    answer = client.get("/console/alerts", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in")


def test_bom_upload_imports_everything_or_nothing(console, db_sessions):
    client, acme, _, _ = console
    _sign_in(client, acme.admin_key)
    csrf = _csrf(client, "/console/products")
    bad = (
        b"product,component,material,share,origin_country\n"
        b"Sonar,Ge lens,germanium,0.1,CN\n"
        b"Sonar,GaN amp,galium,0.02,CN\n"
        b"Drone,,gallium,1.5,ZZ\n"
    )
    answer = client.post("/console/products/upload", data={"csrf": csrf}, files={"file": ("bom.csv", bad)})
    assert answer.status_code == 422
    assert "Row 3: material: unknown material &#39;galium&#39;" in answer.text
    assert "Row 4: component: required" in answer.text
    assert "unknown country &#39;ZZ&#39;" in answer.text
    with unit_of_work(db_sessions) as s:
        assert {p.name for p in s.query(models.Product).filter_by(organisation_id=acme.org.id)} == {"Acme BV radar"}
    good = bad.replace(b"galium", b"gallium").replace(b"Drone,,gallium,1.5,ZZ", b"Drone,Motor,neodymium,0.3,")
    answer = client.post(
        "/console/products/upload", data={"csrf": csrf}, files={"file": ("bom.csv", good)}, follow_redirects=False
    )
    assert answer.status_code == 303
    with unit_of_work(db_sessions) as s:
        products = {
            p.name: sorted((line.component, line.material, line.share, line.origin_country) for line in p.bom_lines)
            for p in s.query(models.Product).filter_by(organisation_id=acme.org.id)
        }
    assert products["Sonar"] == [("GaN amp", "gallium", 0.02, "CN"), ("Ge lens", "germanium", 0.1, "CN")]
    assert products["Drone"] == [("Motor", "neodymium", 0.3, None)]


def test_language_switch_is_remembered_and_pages_speak_it(console):
    client, acme, _, _ = console
    _sign_in(client, acme.admin_key)
    assert "<h1>Alerts</h1>" in client.get("/console/alerts").text
    answer = client.post(
        "/console/language",
        data={"csrf": _csrf(client, "/console/alerts"), "lang": "nl", "next": "/console/alerts?status=firing"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/alerts?status=firing"
    page = client.get("/console/alerts").text
    assert '<html lang="nl">' in page
    assert "<h1>Meldingen</h1>" in page
    assert "waarschuwing" in page
    answer = client.post(
        "/console/language",
        data={"csrf": _csrf(client, "/console/alerts"), "lang": "en", "next": "https://evil.test/"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console"


def test_government_pages_for_a_ministry(console):
    client, _, _, ministry_key = console
    _sign_in(client, ministry_key)
    crisis = client.get("/console/crisis")
    assert crisis.status_code == 200
    assert "Acme BV" in crisis.text
    assert "Rival BV" in crisis.text
    assert client.get("/console/ops").status_code == 200
    answer = client.post(
        "/console/crisis/stress-test",
        data={"csrf": _csrf(client, "/console/crisis"), "country": "cn", "material": "gallium"},
    )
    assert answer.status_code == 200
    assert 'id="stress-result"' in answer.text
    answer = client.post(
        "/console/crisis/stress-test",
        data={"csrf": _csrf(client, "/console/crisis"), "country": "XX", "material": "gallium"},
    )
    assert answer.status_code == 422


def test_every_page_speaks_dutch_and_english(console):
    client, acme, _, ministry_key = console
    english = {
        "/console/alerts": "Alerts",
        f"/console/alerts/{acme.alert_id}": "gallium: price_spike",
        "/console/subscriptions": "Subscriptions and channels",
        "/console/products": "Products",
        "/console/deliveries": "Delivery log",
        "/console/crisis": "Crisis",
        "/console/ops": "Ops desk",
    }
    dutch = {
        "/console/alerts": "Meldingen",
        f"/console/alerts/{acme.alert_id}": "gallium: price_spike",
        "/console/subscriptions": "Abonnementen en kanalen",
        "/console/products": "Producten",
        "/console/deliveries": "Verzendlog",
        "/console/crisis": "Crisis",
        "/console/ops": "Operationeel overzicht",
    }
    pages_of = {
        acme.admin_key: [p for p in english if "crisis" not in p and "ops" not in p],
        ministry_key: ["/console/crisis", "/console/ops"],
    }
    for key, pages in pages_of.items():
        client.cookies.clear()
        _sign_in(client, key)
        for language, titles in (("en", english), ("nl", dutch)):
            client.cookies.set("mews_console_lang", language, path="/console")
            for path in pages:
                page = client.get(path)
                assert page.status_code == 200, (language, path)
                assert f'<html lang="{language}">' in page.text
                assert re.search(rf"<h1>.*{re.escape(titles[path])}.*</h1>", page.text, re.S), (language, path)
        client.cookies.delete("mews_console_lang", path="/console")
    client.cookies.clear()
    sign_in = client.get("/console/sign-in", headers={"accept-language": "nl-NL,nl;q=0.9,en;q=0.5"})
    assert "<h1>Inloggen</h1>" in sign_in.text


def test_test_send_reaches_the_channel_signed_and_only_the_organisations_own(
    migrated_database_url: str, db_sessions, http_receiver, smtp_inbox
):
    settings = NotifySettings(
        database_url=migrated_database_url,
        allow_private_webhook_targets=True,
        smtp_host=smtp_inbox.host,
        smtp_port=smtp_inbox.port,
    )
    with unit_of_work(db_sessions) as s:
        acme, rival = _tenant(s, "Acme BV", "fp-acme"), _tenant(s, "Rival BV", "fp-rival")
        hook = add_webhook(s, acme.org, http_receiver.url("/acme"))
        mail = add_email(s, acme.org, "buyers@acme.test", language="nl")
        hook_id, mail_id, secret = hook.id, mail.id, hook.secret
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        _sign_in(client, acme.admin_key)
        csrf = _csrf(client, "/console/subscriptions")
        page = client.post(f"/console/channels/{hook_id}/test", data={"csrf": csrf})
        assert page.status_code == 200
        assert "The test message was delivered (HTTP 200)." in page.text
        page = client.post(f"/console/channels/{mail_id}/test", data={"csrf": csrf})
        assert "The test message was delivered." in page.text
        assert client.post(f"/console/channels/{rival.channel_id}/test", data={"csrf": csrf}).status_code == 404
        failing = client.post(f"/console/channels/{acme.channel_id}/test", data={"csrf": csrf})  # nothing on :9
        assert "The test message was not delivered:" in failing.text
    [received] = http_receiver.delivered("/acme")
    body = verified(received, secret)
    assert (body["kind"], body["alerts"], body["organisation_id"]) == ("test", [], acme.org.id)
    [message] = smtp_inbox.to("buyers@acme.test")
    assert message["subject"] == "mews: testbericht"
    with unit_of_work(db_sessions) as s:  # a test is not a notification: the outbox and the channel are untouched
        assert s.query(models.Notification).count() == 2
        assert s.get(models.Channel, acme.channel_id).consecutive_failures == 0


def test_test_send_to_teams_and_slack_posts_a_card_their_receivers_accept(
    migrated_database_url: str, db_sessions, chat_receiver
):
    settings = NotifySettings(database_url=migrated_database_url, allow_private_webhook_targets=True)
    with unit_of_work(db_sessions) as s:
        acme = _tenant(s, "Acme BV", "fp-acme")
        teams = add_chat(s, acme.org, "teams", chat_receiver.url("/teams/buyers"), language="nl")
        slack = add_chat(s, acme.org, "slack", chat_receiver.url("/slack/buyers"))
        refused = add_chat(s, acme.org, "slack", chat_receiver.url("/slack/gone"))
        teams_id, slack_id, refused_id = teams.id, slack.id, refused.id
    chat_receiver.answer("/slack/gone", (404, {}))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        _sign_in(client, acme.admin_key)
        csrf = _csrf(client, "/console/subscriptions")
        assert f'action="/console/channels/{teams_id}/test"' in client.get("/console/subscriptions").text
        page = client.post(f"/console/channels/{teams_id}/test", data={"csrf": csrf})
        assert "The test message was delivered (HTTP 202)." in page.text
        page = client.post(f"/console/channels/{slack_id}/test", data={"csrf": csrf})
        assert "The test message was delivered (HTTP 200)." in page.text
        page = client.post(f"/console/channels/{refused_id}/test", data={"csrf": csrf})
        assert "The test message was not delivered:" in page.text
        assert "HTTP 404" in page.text
    [card] = chat_receiver.accepted("/teams/buyers")
    content = card["attachments"][0]["content"]
    assert content["body"][0]["text"].startswith("[TEST] Een testbericht van mews")
    assert [a["title"] for a in content["actions"]] == ["Meldingen beheren"]
    [message] = chat_receiver.accepted("/slack/buyers")
    assert message["text"].startswith("[TEST] A test message from mews")
    assert message["blocks"][-1]["elements"][0]["url"] == "http://127.0.0.1:8003/console/subscriptions"
    with unit_of_work(db_sessions) as s:  # no notification, no failure counted against the refusing channel
        assert s.query(models.Notification).count() == 1
        assert s.get(models.Channel, refused_id).consecutive_failures == 0
