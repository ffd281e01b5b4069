"""Notifications in Dutch and English: numbers, dates, severities, sources and summaries from the machine fields."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.notify.ack_links import (
    UnsubscribeClaim,
    manage_url,
    sign_ack_token,
    sign_unsubscribe_token,
    verify_ack_token,
    verify_unsubscribe_token,
)
from services.notify.delivery import locale
from services.notify.delivery.email import render_email
from services.notify.settings import NotifySettings


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (1234.5, "nl", "1.234,5"),
        (1234.5, "en", "1,234.5"),
        (0.71, "nl", "0,71"),
        (0.71, "en", "0.71"),
        (1234567, "nl", "1.234.567"),
        (-12.25, "nl", "-12,2"),
        (float("nan"), "en", "?"),
        (None, "nl", "?"),
        ("49", "en", "?"),
        (True, "en", "?"),
    ],
)
def test_numbers_take_the_language_marks(value, language, expected):
    assert locale.number(value, language) == expected


@pytest.mark.parametrize(
    ("indicator", "value", "nl", "en"),
    [
        ("price_change_30d_pct", 49.432654023557234, "+49,4 %", "+49.4%"),
        ("top_origin_share", 0.494, "49,4 %", "49.4%"),
        ("leadtime_ratio", 1.5, "1,50×", "1.50×"),
        ("stock_cover_days", 12.4, "12 dagen", "12 days"),
        ("stock_tonnes", 1234.56, "1.234,6 t", "1,234.6 t"),
        ("concentration_hhi", 4321.0, "4.321", "4,321"),
        ("price_jump_z", 3.14, "+3,1 sd", "+3.1 sd"),
        ("price", 812.5, "812,5", "812.5"),
        ("leadtime_days.CN", 45.0, "45 dagen", "45 days"),
    ],
)
def test_indicator_values_read_in_their_unit(indicator, value, nl, en):
    assert (locale.indicator_value(indicator, value, "nl"), locale.indicator_value(indicator, value, "en")) == (nl, en)


def test_dates_are_in_the_channel_time_zone_with_month_names():
    winter, summer = "2026-03-02T08:30:00+00:00", datetime(2026, 7, 14, 6, 15, tzinfo=UTC)
    assert locale.when(winter, "nl", "Europe/Amsterdam") == "2 maart 2026 09:30 CET"
    assert locale.when(summer, "nl", "Europe/Amsterdam") == "14 juli 2026 08:15 CEST"
    assert locale.when(winter, "en") == "2 March 2026 08:30 UTC"
    assert locale.when("2026-03-02T08:30:00Z", "en", "Not/AZone") == "2 March 2026 08:30 UTC"
    assert locale.when(datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=2))), "en") == (
        "2 March 2026 08:30 UTC"
    )
    assert locale.when(None, "nl") == ""


def test_severities_statuses_and_sources_are_words_never_ids():
    assert [locale.severity(s, "nl") for s in ("critical", "warning")] == ["kritiek", "waarschuwing"]
    assert [locale.status(s, "nl") for s in ("firing", "resolved")] == ["actief", "opgelost"]
    assert locale.severity("critical", "fr") == "critical"  # an unknown language reads English
    assert locale.source("api:key39449b5c", "nl") == "push-API (sleutel key39449b5c)"
    assert locale.source("api:key39449b5c", "en") == "push API (key39449b5c)"
    assert locale.source("lme", "nl") == "lme"
    assert locale.source("feed-7", "en", {"feed-7": "Reuters commodities"}) == "Reuters commodities"
    assert locale.via("material:antimony", "nl") == "grondstof antimoon"
    assert locale.via("product:Radar module>GaN chip", "en") == "product Radar module > GaN chip"


ALERT = {
    "id": "a1",
    "material": "antimony",
    "rule": "price-change-30d",
    "indicator": "price_change_30d_pct",
    "severity": "critical",
    "status": "firing",
    "value": 49.432654023557234,
    "threshold": 40.0,
    "warning_threshold": 20.0,
    "critical_threshold": 40.0,
    "parameter": "price_volatility",
    "starts_at": "2026-07-14T06:15:00+00:00",
    "ends_at": None,
    "acknowledged_at": None,
    "open_since": None,
    "summary": "antimony: 30-day price change +49% is above the critical threshold of +40% (since 2026-07-14)",
    "evidence": [
        {
            "kind": "price",
            "source": "api:key39449b5c",
            "time": "2026-07-14T06:15:00+00:00",
            "value": 1234.5,
            "url": "https://example.org/prices/sb",
        }
    ],
    "via": ["material:antimony"],
}


def test_the_summary_is_rendered_from_the_machine_fields_in_both_languages():
    assert locale.summary(ALERT, "nl") == (
        "Antimoon: prijsverandering over 30 dagen +49,4 % ligt boven de drempel voor kritiek van +40,0 %"
    )
    assert locale.summary(ALERT, "en") == (
        "Antimony: 30-day price change +49.4% is above the critical threshold of +40.0%"
    )
    resolved = {**ALERT, "status": "resolved", "value": 12.0, "threshold": 15.0}
    assert locale.summary(resolved, "nl").endswith("+12,0 % ligt weer onder de herstelgrens van +15,0 %; opgelost")
    floor = {
        **ALERT,
        "indicator": "stock_cover_days",
        "value": 9.0,
        "threshold": 14.0,
        "warning_threshold": 30.0,
        "critical_threshold": 14.0,
    }
    assert locale.summary(floor, "en") == "Antimony: stock cover 9 days is below the critical threshold of 14 days"
    caught_up = {**ALERT, "open_since": "2026-07-01T22:30:00+00:00"}
    assert locale.summary(caught_up, "nl", "Europe/Amsterdam").startswith("Open sinds 2 juli 2026 00:30 CEST. ")


DUTCH_EXCERPT = """\
== antimoon / prijsverandering over 30 dagen: KRITIEK (actief) ==
Antimoon: prijsverandering over 30 dagen +49,4 % ligt boven de drempel voor kritiek van +40,0 %
Regel: Een aanhoudende prijsstijging over een maand (maand op maand bij maandreeksen).
Waarde: +49,4 % tegen drempel +40,0 % (prijsverandering over 30 dagen)
Monitoringparameter (CRMA art. 20, lid 1): prijsvolatiliteit
Sinds: 14 juli 2026 08:15 CEST
Waarom u dit ontvangt: grondstof antimoon
Onderbouwing:
  - prijs van push-API (sleutel key39449b5c) op 14 juli 2026 08:15 CEST: 1.234,5 <https://example.org/prices/sb>
"""


def test_a_dutch_email_is_dutch_throughout_and_matches_the_readme_excerpt():
    links = {
        "manage": "https://mews.example/console/subscriptions",
        "ack:a1": "https://mews.example/v1/ack/t",
        "unsubscribe": "https://mews.example/v1/unsubscribe/u",
    }
    mail = render_email(
        "alert",
        {"kind": "alert", "status": "firing", "group_key": "immediate:c:antimony", "alerts": [ALERT]},
        "nl",
        links,
        "Europe/Amsterdam",
    )
    assert mail.subject == "[mews] KRITIEK antimoon: prijsverandering over 30 dagen"
    assert DUTCH_EXCERPT in mail.text
    assert DUTCH_EXCERPT in (Path(__file__).resolve().parents[3] / "README.md").read_text()  # quoted there
    assert "Afmelden voor dit adres: https://mews.example/v1/unsubscribe/u" in mail.text
    assert '<a href="https://mews.example/v1/unsubscribe/u">Afmelden voor dit adres</a>' in mail.html
    english = render_email(
        "alert",
        {"kind": "alert", "status": "firing", "group_key": "immediate:c:antimony", "alerts": [ALERT]},
        "en",
        links,
    )
    assert "Value: +49.4% against threshold +40.0% (30-day price change)" in english.text
    assert "price from push API (key39449b5c) at 14 July 2026 06:15 UTC: 1,234.5" in english.text
    assert "Unsubscribe this address: https://mews.example/v1/unsubscribe/u" in english.text


def test_every_scoring_rule_has_a_dutch_and_english_name_and_the_english_description_is_scorings():
    shipped = tomllib.loads((Path(__file__).resolve().parents[3] / "services" / "scoring" / "scoring.toml").read_text())
    described = {rule["name"]: rule["description"] for rule in shipped["rules"]}
    assert set(locale.RULES) == set(described)
    for name, description in described.items():
        assert locale.rule_description(name, "en") == description
        assert locale.rule_description(name, "nl") not in ("", description)
        assert locale.rule_title(name, "nl") != name
    assert locale.rule_title("price-change-30d", "nl") == "prijsverandering over 30 dagen"
    assert (locale.rule_title("gallium-own", "nl"), locale.rule_description("gallium-own", "nl")) == (
        "gallium-own",
        "",
    )  # a rule of a material alone shows its name


def test_emails_and_cards_show_the_rule_in_words_and_webhooks_keep_its_id():
    from services.notify.delivery.payload import localised_payload, slack_message, teams_message

    payload = {"kind": "alert", "status": "firing", "group_key": "immediate:c:antimony", "alerts": [ALERT]}
    links = {"manage": "https://mews.example/console/subscriptions", "ack:a1": "https://mews.example/v1/ack/t"}
    english = render_email("alert", payload, "en", links)
    assert english.subject == "[mews] CRITICAL antimony: 30-day price change"
    assert "Rule: A sustained price rise over a month (month-on-month for monthly series)." in english.text
    assert '<th align="left">Rule</th><td>A sustained price rise over a month' in english.html
    card = teams_message(payload, links, "nl")["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Regel"] == (
        "prijsverandering over 30 dagen: Een aanhoudende prijsstijging over een maand "
        "(maand op maand bij maandreeksen)."
    )
    assert card["actions"][0]["title"] == "Bevestigen: antimoon, prijsverandering over 30 dagen"
    slack = slack_message(payload, links, "en")
    fields = [f["text"] for f in slack["blocks"][1]["fields"]]
    assert "*Rule*\n30-day price change: A sustained price rise over a month (month-on-month for monthly series)." in (
        fields
    )
    [webhook] = localised_payload(payload, "nl")["alerts"]
    assert (webhook["rule"], webhook["rule_localised"]) == ("price-change-30d", "prijsverandering over 30 dagen")
    assert webhook["rule_description_localised"].startswith("Een aanhoudende prijsstijging")


def test_an_admin_notice_reads_in_the_channels_language_and_time_zone():
    notice = {
        "recipients": ["admin@ezk.test"],
        "channel_id": "chan-1",
        "channel_kind": "teams",
        "reason": "receiver answered HTTP 404: the chat webhook refuses messages for good",
        "cause": {"kind": "gone", "status_code": 404},
        "target_host": "prod.westeurope.logic.azure.com",
        "disabled_at": "2026-07-14T06:15:00+00:00",
    }
    links = {"manage": "https://mews.example/console/subscriptions"}
    dutch = render_email("admin_notice", notice, "nl", links, "Europe/Amsterdam")
    assert dutch.subject == "[mews] Kanaal uitgeschakeld: Microsoft Teams op prod.westeurope.logic.azure.com"
    assert "mews heeft een Microsoft Teams-kanaal van uw organisatie uitgeschakeld." in dutch.text
    assert (
        "Reden: de ontvanger antwoordde HTTP 404: hij neemt geen berichten meer aan\n"
        "Uitgeschakeld op: 14 juli 2026 08:15 CEST\n" in dutch.text
    )
    assert "<li>Uitgeschakeld op: 14 juli 2026 08:15 CEST</li>" in dutch.html
    failures = {
        **notice,
        "channel_kind": "webhook",
        "cause": {"kind": "failures", "count": 3, "last_error": "HTTP 503"},
    }
    english = render_email("admin_notice", failures, "en", links, "America/New_York")
    assert english.subject == "[mews] Channel disabled: webhook at prod.westeurope.logic.azure.com"
    assert "Reason: 3 notifications in a row failed; last: HTTP 503\nDisabled at: 14 July 2026 02:15 EDT\n" in (
        english.text
    )
    # A notice queued before its cause was kept says the English reason, in UTC when the channel has no zone.
    older = {k: v for k, v in notice.items() if k not in ("cause", "channel_kind")}
    assert "Reason: receiver answered HTTP 404" in render_email("admin_notice", older, "en", links).text
    assert "Disabled at: 14 July 2026 06:15 UTC" in render_email("admin_notice", older, "en", links).text


def test_manage_link_is_the_consoles_subscriptions_page_or_the_configured_template():
    assert manage_url(NotifySettings(public_base_url="https://mews.example/"), "org-1") == (
        "https://mews.example/console/subscriptions"
    )
    configured = NotifySettings(manage_url="https://console.example/orgs/{organisation_id}/subscriptions")
    assert manage_url(configured, "org-1") == "https://console.example/orgs/org-1/subscriptions"


KEY = "link-signing-key-for-unit-tests-0123456789"


def test_unsubscribe_tokens_are_bound_to_their_channel_and_never_pass_for_an_ack_token():
    soon = datetime(2026, 7, 14, tzinfo=UTC) + timedelta(days=1)
    now = datetime(2026, 7, 14, tzinfo=UTC)
    token = sign_unsubscribe_token(KEY, "chan-1", "org-1", soon)
    assert verify_unsubscribe_token(KEY, token, now) == UnsubscribeClaim("chan-1", "org-1", soon)
    assert verify_unsubscribe_token(KEY, token, soon) == "expired"
    assert verify_unsubscribe_token("another-key-of-sufficient-length-00000000", token, now) == "bad signature"
    assert verify_unsubscribe_token(KEY, token.replace("chan-1", "chan-2"), now) == "bad signature"
    assert verify_unsubscribe_token(KEY, "x.y", now) == "malformed token"
    assert verify_ack_token(KEY, token, now) == "bad signature"
    assert verify_unsubscribe_token(KEY, sign_ack_token(KEY, "chan-1", "org-1", soon), now) == "bad signature"
