"""Sign-in by emailed one-time link, on SQLite and PostgreSQL with a real SMTP server: the link signs a user in
with their own role, once and only before it expires; a known and an unknown address get the same answer; asking
too often is throttled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.notify.api.app import create_app
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.notify.store.keys import hash_key
from tests.integration.notify.world import add_org

pytestmark = pytest.mark.integration
LINK = re.compile(r"http://console\.test/console/sign-in/link/([A-Za-z0-9_-]+)")


@pytest.fixture
def console(migrated_database_url: str, db_sessions, smtp_inbox) -> Iterator[TestClient]:
    settings = NotifySettings(
        database_url=migrated_database_url,
        smtp_host=smtp_inbox.host,
        smtp_port=smtp_inbox.port,
        public_base_url="http://console.test",
        console_link_requests_per_window=3,
    )
    with unit_of_work(db_sessions) as s:
        acme = add_org(s, "Acme BV")
        s.add(models.User(organisation_id=acme.id, email="Buyer@Acme.test", name="Buyer", role="member", language="nl"))
        s.add(models.User(organisation_id=acme.id, email="boss@acme.test", name="Boss", role="admin"))
        rival = add_org(s, "Rival BV")
        s.add(models.User(organisation_id=rival.id, email="boss@acme.test", name="Boss", role="member"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield client


def _csrf(client: TestClient, path: str = "/console/sign-in") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _ask(client: TestClient, email: str):
    return client.post("/console/sign-in/email", data={"csrf": _csrf(client), "email": email})


def _use(client: TestClient, token: str):
    confirm = client.get(f"/console/sign-in/link/{token}")
    if confirm.status_code != 200:
        return confirm
    csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
    return client.post("/console/sign-in/link", data={"csrf": csrf, "token": token}, follow_redirects=False)


def test_an_emailed_link_signs_in_once_with_the_users_role_and_tells_nothing_of_unknown_addresses(
    console: TestClient, smtp_inbox, db_sessions
):
    known, unknown = _ask(console, "buyer@acme.test"), _ask(console, "nobody@acme.test")
    assert known.status_code == unknown.status_code == 200
    assert _notice(known.text) == _notice(unknown.text)
    assert "If this address belongs to a user, a sign-in link is on its way." in known.text
    [mail] = smtp_inbox.to("buyer@acme.test")  # sent in the background, after the answer; the test client waits
    assert smtp_inbox.to("nobody@acme.test") == []
    assert mail["subject"] == "mews: uw inloglink"  # the user's language
    [token] = LINK.findall(mail.get_body(("plain",)).get_content())
    with unit_of_work(db_sessions) as s:  # only the token's hash is kept
        [link] = s.scalars(select(models.SignInLink)).all()
        assert link.token_hash == hash_key(token)
        assert token not in (link.token_hash, link.id)

    console.cookies.clear()
    confirm = console.get(f"/console/sign-in/link/{token}")
    assert "Sign in to Acme BV as Buyer@Acme.test?" in confirm.text
    assert confirm.headers["referrer-policy"] == "no-referrer"
    assert console.get("/console/alerts", follow_redirects=False).status_code == 303  # opening it is not using it
    used = _use(console, token)
    assert (used.status_code, used.headers["location"]) == (303, "/console")
    assert console.get("/console/alerts").status_code == 200
    assert "Buyer@Acme.test" in console.get("/console/alerts").text
    # A member: reads and acknowledges, but may not change configuration.
    csrf = _csrf(console, "/console/subscriptions")
    assert (
        console.post(
            "/console/products/upload",
            data={"csrf": csrf},
            files={"file": ("bom.csv", b"product,component,material\n")},
        ).status_code
        == 403
    )

    console.cookies.clear()
    again = _use(console, token)
    assert again.status_code == 410
    assert "expired or was already used" in again.text
    assert console.get("/console/alerts", follow_redirects=False).status_code == 303


def test_an_address_in_two_organisations_gets_a_link_for_each_with_its_role(console: TestClient, smtp_inbox):
    _ask(console, "boss@acme.test")
    [mail] = smtp_inbox.to("boss@acme.test")
    text = mail.get_body(("plain",)).get_content()
    assert re.search(r"Sign in to Acme BV \(administrator\): ", text)
    assert re.search(r"Sign in to Rival BV \(member\): ", text)
    acme_token, rival_token = LINK.findall(text)
    console.cookies.clear()
    assert _use(console, rival_token).status_code == 303
    page = console.get("/console/subscriptions").text
    assert "Rival BV" in page
    assert "Acme BV" not in page


def test_an_expired_link_is_refused(console: TestClient, smtp_inbox, db_sessions):
    _ask(console, "buyer@acme.test")
    [token] = LINK.findall(smtp_inbox.to("buyer@acme.test")[0].get_body(("plain",)).get_content())
    with unit_of_work(db_sessions) as s:
        link = s.scalars(select(models.SignInLink)).one()
        link.expires_at = link.created_at - timedelta(seconds=1)
    console.cookies.clear()
    assert _use(console, token).status_code == 410
    forged = _use(console, token[:-2] + "xx")
    assert forged.status_code == 410


def test_asking_for_links_too_often_is_throttled_known_address_or_not(console: TestClient, smtp_inbox):
    for _ in range(3):
        assert _ask(console, "nobody@acme.test").status_code == 200
    assert _ask(console, "nobody@acme.test").status_code == 429
    assert _ask(console, "buyer@acme.test").status_code == 429  # the same client address, over its limit too
    assert smtp_inbox.to("buyer@acme.test") == []
    assert _ask(console, "not an address").status_code == 422


def _notice(page: str) -> str:
    return re.search(r'<p class="notice" role="status" id="link-sent">([^<]+)</p>', page).group(1)
