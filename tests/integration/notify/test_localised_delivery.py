"""A Dutch channel gets a fully Dutch notification, on the real broker, SMTP server and HTTP receiver: the summary
rendered from the breach's fields, Dutch numbers, dates in the channel's time zone, a readable source, a manage
link that answers and an unsubscribe link that, once confirmed, turns the channel off."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from services.notify.store import models
from services.notify.store.db import unit_of_work
from shared.events import BreachRaised, BreachStatus, Classification, Evidence, Severity
from tests.eventually import eventually
from tests.integration.notify.conftest import LINK_KEY
from tests.integration.notify.world import (
    add_email,
    add_org,
    add_webhook,
    notifier_settings,
    publish,
    running,
    subscribe,
    verified,
)

pytestmark = pytest.mark.integration

OBSERVED = datetime(2026, 7, 14, 6, 15, tzinfo=UTC)  # 08:15 in Amsterdam (CEST)


def antimony_breach() -> BreachRaised:
    """The breach of the black-box run: a raw value with fifteen decimals, pushed through the API by a key."""
    return BreachRaised(
        fingerprint="fp-sb-30d",
        material="antimony",
        rule="price-change-30d",
        indicator="price_change_30d_pct",
        severity=Severity.CRITICAL,
        status=BreachStatus.FIRING,
        value=49.432654023557234,
        warning_threshold=20.0,
        critical_threshold=40.0,
        clear_threshold=15.0,
        threshold=40.0,
        starts_at=OBSERVED,
        observed_at=OBSERVED,
        summary="antimony: 30-day price change +49% is above the critical threshold of +40% (since 2026-07-14)",
        evidence=[
            Evidence(
                id="ev-1",
                source="api:key39449b5c",
                kind="price",
                time=OBSERVED,
                value=1234.5,
                url="https://example.org/prices/sb",
            )
        ],
        classification=Classification.PUBLIC,
        parameter="price_volatility",
    )


ENGLISH = (
    "Value",
    "Since",
    "above",
    "threshold",
    "Open since",
    "Evidence",
    "Manage",
    "Unsubscribe",
    "from ",
    "critical",
    "firing",
    "api:",
    "49.43",
    "/docs",
    "2026-07-14",
    "UTC",
    "price-change",
    "Rule",
)


async def test_a_dutch_channel_gets_a_dutch_email_and_webhook_and_can_unsubscribe(
    kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox, db_sessions, http_receiver, api_url
):
    settings = notifier_settings(
        kafka_bootstrap,
        kafka_topics,
        migrated_database_url,
        smtp_inbox,
        link_signing_key=LINK_KEY,
        public_base_url=api_url,
    )
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Ministerie van EZK", clearance="government", kind="ministry")
        mail = add_email(s, org, "crisis@ezk.test", language="nl")
        mail.timezone = "Europe/Amsterdam"
        hook = add_webhook(s, org, http_receiver.url("/nl"))
        hook.language, hook.timezone = "nl", "Europe/Amsterdam"
        subscribe(s, org, [mail, hook], material="antimony")
        mail_id, secret = mail.id, hook.secret

    async with running(settings, db_sessions):
        await publish(settings, antimony_breach())
        await eventually(
            lambda: smtp_inbox.to("crisis@ezk.test") and http_receiver.delivered("/nl"),
            what="the Dutch email and webhook",
        )

    [message] = smtp_inbox.to("crisis@ezk.test")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert message["subject"] == "[mews] KRITIEK antimoon: prijsverandering over 30 dagen"
    for dutch in (
        "Antimoon: prijsverandering over 30 dagen +49,4 % ligt boven de drempel voor kritiek van +40,0 %",
        "Waarde: +49,4 % tegen drempel +40,0 %",
        "Sinds: 14 juli 2026 08:15 CEST",
        "prijs van push-API (sleutel key39449b5c) op 14 juli 2026 08:15 CEST: 1.234,5",
        "Waarom u dit ontvangt: grondstof antimoon",
        "== antimoon / prijsverandering over 30 dagen: KRITIEK",
        "Regel: Een aanhoudende prijsstijging over een maand (maand op maand bij maandreeksen).",
        "Monitoringparameter (CRMA art. 20, lid 1): prijsvolatiliteit",
        f"Uw abonnement beheren: {api_url}/console/subscriptions",
    ):
        assert dutch in text, dutch
    prose = re.sub(r"https?://\S+", "", text)  # links are not words
    assert [word for word in ENGLISH if word in prose] == []
    assert "push-API (sleutel key39449b5c)" in html
    assert "49,4 %" in html

    body = verified(http_receiver.delivered("/nl")[0], secret)
    [alert] = body["alerts"]
    assert alert["summary"] == antimony_breach().summary  # the machine field stays as scoring wrote it
    assert alert["language"] == "nl"
    assert alert["summary_localised"] == (
        "Antimoon: prijsverandering over 30 dagen +49,4 % ligt boven de drempel voor kritiek van +40,0 %"
    )
    assert alert["value"] == 49.432654023557234

    # The manage link is the console's subscriptions page, the unsubscribe link asks first and then turns the
    # email channel off.
    manage = re.search(r"Uw abonnement beheren: (\S+)", text).group(1)
    unsubscribe = re.search(r"Afmelden voor dit adres: (\S+)", text).group(1)
    assert unsubscribe.startswith(f"{api_url}/v1/unsubscribe/")
    async with httpx.AsyncClient() as http:
        assert manage == f"{api_url}/console/subscriptions"
        asked = await http.get(unsubscribe)
        assert asked.status_code == 200
        assert '<form method="post">' in asked.text
        assert "Afmelden?" in asked.text
        with unit_of_work(db_sessions) as s:
            assert s.get(models.Channel, mail_id).enabled is True
        done = await http.post(unsubscribe)
        assert done.status_code == 200
        assert "Afgemeld" in done.text
        with unit_of_work(db_sessions) as s:
            channel = s.get(models.Channel, mail_id)
            assert (channel.enabled, channel.disabled_reason) == (False, "unsubscribed by the recipient (link)")
        assert (await http.post(unsubscribe)).status_code == 200  # again: still off, no error
        forged = unsubscribe[:-4] + ("AAAA" if not unsubscribe.endswith("AAAA") else "BBBB")
        assert (await http.get(forged)).status_code == 403
