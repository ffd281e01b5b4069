"""The Teams and Slack messages are contracts with Microsoft's and Slack's receivers, pinned against stored examples.

A change that makes a `..._matches_the_stored_example` test fail changes what every Teams or Slack channel shows:
update tests/fixtures/notify/teams_message_v1.json or slack_message_v1.json on purpose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.notify.delivery.payload import (
    ADAPTIVE_CARD,
    CARD_ACTIONS,
    CARD_ALERTS,
    CARD_EVIDENCE,
    explanation,
    notification_payload,
    slack_message,
    teams_message,
)
from services.notify.delivery.webhook import (
    RETRY_AFTER_CAP,
    classify_response,
    deliver_chat,
    deliver_webhook,
    encode_body,
    retry_after,
)
from services.notify.outbound import masked_url
from shared.events import BreachStatus
from tests.unit.notify.test_webhook_payload import alert_row

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "notify"
LINKS = {
    "manage": "https://mews.example/console/subscriptions",
    "unsubscribe": "https://mews.example/v1/unsubscribe/chan-1.org-1.1780306200.c2lnbmF0dXJl",
    "ack:alert-1": "https://mews.example/v1/ack/alert-1.org-1.1772530200.c2lnbmF0dXJl",
}


def example_group(*rows) -> dict:
    """A group of one firing (unacknowledged) and one resolved alert, as the outbox holds it."""
    rows = rows or (
        alert_row("alert-1", "fp-ga-spike"),
        alert_row("alert-2", "fp-ga-old", status=BreachStatus.RESOLVED),
    )
    _, payload = notification_payload(
        "org-1", "immediate:chan-1:gallium", list(rows), datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC)
    )
    return json.loads(encode_body(payload))


def on_the_wire(message: dict) -> dict:
    return json.loads(encode_body(message))


def test_teams_message_matches_the_stored_example():
    stored = json.loads((FIXTURES / "teams_message_v1.json").read_text())
    assert on_the_wire(teams_message(example_group(), LINKS)) == stored, "the Teams card changed: update the example"


def test_slack_message_matches_the_stored_example():
    stored = json.loads((FIXTURES / "slack_message_v1.json").read_text())
    assert on_the_wire(slack_message(example_group(), LINKS)) == stored, "the Slack message changed: update the example"


def test_teams_message_is_one_adaptive_card_1_4_with_facts_and_open_url_actions():
    message = teams_message(example_group(), LINKS)
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert {block["type"] for block in card["body"]} == {"TextBlock", "FactSet"}
    facts = [{f["title"]: f["value"] for f in b["facts"]} for b in card["body"] if b["type"] == "FactSet"]
    assert [f["Status"] for f in facts] == ["firing", "resolved"]
    assert facts[0]["Threshold"] == "annualised price volatility 71.0% is above the critical threshold 60.0%"
    assert facts[1]["Ended"] == "2 March 2026 09:30 UTC"
    assert any("[lme price](https://example.org/prices/ga)" in b.get("text", "") for b in card["body"])
    assert all(a["type"] == "Action.OpenUrl" for a in card["actions"])
    # Acknowledging: only the firing alert has a button, and it carries the signed link; then manage, unsubscribe.
    assert [a["url"] for a in card["actions"]] == [LINKS["ack:alert-1"], LINKS["manage"], LINKS["unsubscribe"]]
    assert [a["title"] for a in card["actions"]][1:] == ["Manage alerts", "Unsubscribe this channel"]


def test_slack_message_has_a_text_fallback_and_only_section_context_and_actions_blocks():
    message = slack_message(example_group(), LINKS)
    assert message["text"] == "[FIRING] 2 alerts: gallium"
    assert {b["type"] for b in message["blocks"]} == {"section", "context", "actions"}
    assert len(message["blocks"]) <= 50
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [e["url"] for e in actions["elements"]] == [LINKS["ack:alert-1"], LINKS["manage"], LINKS["unsubscribe"]]
    assert [e["action_id"] for e in actions["elements"]] == ["ack:alert-1", "manage", "unsubscribe"]
    assert all(len(f["text"]) <= 2000 for b in message["blocks"] for f in b.get("fields", []))
    assert all(len(b.get("fields", [])) <= 10 for b in message["blocks"])


def test_an_acknowledged_or_resolved_alert_gets_no_acknowledge_button():
    group = example_group(
        alert_row("alert-1", "fp-ga-spike", acknowledged=True),
        alert_row("alert-2", "fp-ga-old", status=BreachStatus.RESOLVED),
    )
    links = {**LINKS, "ack:alert-2": "https://mews.example/v1/ack/other"}
    assert [a["url"] for a in teams_message(group, links)["attachments"][0]["content"]["actions"]] == [
        LINKS["manage"],
        LINKS["unsubscribe"],
    ]


def test_a_resolved_group_says_so_in_green():
    group = example_group(alert_row("alert-2", "fp-ga-old", status=BreachStatus.RESOLVED))
    title = teams_message(group, LINKS)["attachments"][0]["content"]["body"][0]
    assert (title["text"], title["color"]) == (
        "[RESOLVED] Gallium: annualised price volatility 71.0% is back below the clear threshold of 25.0%; resolved",
        "Good",
    )
    assert slack_message(group, LINKS)["text"].startswith("[RESOLVED] ")


def test_a_large_group_is_cut_to_the_card_limits_and_counts_the_rest():
    rows = [alert_row(f"alert-{i}", f"fp-{i}") for i in range(CARD_ALERTS + 5)]
    links = {"manage": LINKS["manage"], **{f"ack:alert-{i}": f"https://mews.example/v1/ack/{i}" for i in range(15)}}
    group = example_group(*rows)
    card = teams_message(group, links)["attachments"][0]["content"]
    assert sum(b["type"] == "FactSet" for b in card["body"]) == CARD_ALERTS
    assert card["body"][-1]["text"] == "and 5 more"
    assert len(card["actions"]) == CARD_ACTIONS + 1
    slack = slack_message(group, links)
    assert len(slack["blocks"]) <= 50
    assert slack["blocks"][-2]["elements"][0]["text"] == "and 5 more"


def test_an_alert_shows_at_most_card_evidence_links():
    group = example_group(alert_row("alert-1", "fp-x"))
    group["alerts"][0]["evidence"] *= CARD_EVIDENCE + 3
    card = teams_message(group, LINKS)["attachments"][0]["content"]
    assert card["body"][3]["text"].count("](https://example.org/prices/ga)") == CARD_EVIDENCE
    context = slack_message(group, LINKS)["blocks"][2]["elements"][0]["text"]
    assert context.count("<https://example.org/prices/ga|") == CARD_EVIDENCE


def test_slack_control_characters_are_escaped_so_a_field_cannot_forge_a_link():
    group = example_group(alert_row("alert-1", "fp-x"))
    group["alerts"][0]["material"] = "<https://evil.example|click> & more"
    text = slack_message(group, LINKS)["blocks"][1]["text"]["text"]
    assert text.startswith("*&lt;https://evil.example|click&gt; &amp; more: ")


def test_dutch_channels_get_dutch_labels():
    card = teams_message(example_group(), LINKS, "nl")["attachments"][0]["content"]
    facts = {f["title"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert {"Ernst", "Grondstof", "Regel", "Drempel"} <= facts
    assert [a["title"] for a in card["actions"]][-2:] == ["Meldingen beheren", "Dit kanaal afmelden"]
    assert explanation(
        {
            "status": "firing",
            "rule": "r",
            "parameter": "p",
            "indicator": "top_origin_share",
            "value": 0.5,
            "threshold": 0.3,
            "severity": "warning",
        },
        "nl",
    ) == ("aandeel van het grootste herkomstland 50,0 % ligt boven de drempel 30,0 % (waarschuwing)")
    assert [f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"] if f["title"] == "Sinds"][
        0
    ] == "2 maart 2026 08:30 UTC"


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "7", 7.0),
        (503, "1.5", 1.5),
        (429, "Wed, 02 Mar 2026 09:31:00 GMT", 60.0),
        (429, "soon", None),
        (500, "7", None),
        (429, "999999", RETRY_AFTER_CAP),
        (429, "-3", 0.0),
        (429, "nan", None),
    ],
)
def test_retry_after_is_read_from_429_and_503_only(status, header, expected):
    response = httpx.Response(status, headers={"retry-after": header})
    assert retry_after(response, now=datetime(2026, 3, 2, 9, 30, tzinfo=UTC)) == expected


def test_a_429_is_retried_after_what_it_asks():
    outcome = classify_response(httpx.Response(429, headers={"retry-after": "2"}))
    assert (outcome.outcome, outcome.status_code, outcome.retry_after) == ("retry", 429, 2.0)
    assert outcome.error == "HTTP 429, Retry-After 2 s"


def test_a_secret_url_is_masked_to_its_host_and_last_characters():
    url = "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=S3CR3Txyz9"
    assert masked_url(url) == "https://prod-01.westeurope.logic.azure.com/…xyz9"
    assert masked_url(masked_url(url)) == masked_url(url)
    assert "S3CR3T" not in masked_url("https://hooks.slack.com/services/T0/B0/S3CR3T")


@pytest.mark.parametrize(
    ("status", "chat", "webhook"),
    [
        (400, "rejected", "retry"),
        (403, "gone", "retry"),
        (404, "gone", "retry"),
        (410, "gone", "gone"),
        (408, "retry", "retry"),
        (429, "retry", "retry"),
        (500, "retry", "retry"),
        (200, "delivered", "delivered"),
    ],
)
async def test_chat_refusals_for_good_are_gone_a_400_rejects_one_message_webhooks_go_on_410(status, chat, webhook):
    url = "https://hooks.slack.com/services/T000/B000/secret-part"
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="invalid_token"))
    async with httpx.AsyncClient(transport=transport) as client:
        said = await deliver_chat(client, url, {"text": "x"}, lambda _: None)
        signed = await deliver_webhook(
            client, url, "whsec_" + "A" * 32, "msg-1", {"alerts": []}, datetime(2026, 3, 2, tzinfo=UTC), lambda _: None
        )
    assert (said.outcome, said.status_code, signed.outcome) == (chat, status, webhook)
    assert "secret-part" not in (said.error or "")
