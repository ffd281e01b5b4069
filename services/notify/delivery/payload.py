"""The webhook payload, version 1: what a receiver gets for a group of alerts (and what emails are rendered from).

The shape is a contract with every receiver: add fields, never change their meaning or type; a new meaning is a
new `version`. tests/unit/notify/test_webhook_payload.py pins it against a stored example.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from services.notify.delivery import locale
from services.notify.pipeline.alert import Alert

PAYLOAD_VERSION = "1"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _summary(alert: Alert) -> str:
    if alert.open_since is None:
        return alert.summary
    return f"Open since {alert.open_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC. {alert.summary}"


def alert_payload(alert: Alert) -> dict[str, Any]:
    """One alert as a receiver sees it: the breach's fields, evidence and acknowledgement state.

    `starts_at` is when the episode began firing, in its resolution too (also when the firing was never sent);
    `open_since` is set (to when it opened) when a new subscription or channel is told of a breach already open.
    """
    breach = alert.breach or {}
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "material": alert.material,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "classification": alert.classification.value,
        "indicator": breach.get("indicator"),
        "parameter": breach.get("parameter", ""),
        "value": breach.get("value"),
        "threshold": breach.get("threshold"),
        "warning_threshold": breach.get("warning_threshold"),
        "critical_threshold": breach.get("critical_threshold"),
        "starts_at": _iso(alert.starts_at),
        "ends_at": _iso(alert.ends_at),
        "observed_at": breach.get("observed_at"),
        "summary": _summary(alert),
        "evidence": breach.get("evidence", []),
        "via": list(alert.via),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "open_since": _iso(alert.open_since),
    }


def localised_payload(payload: dict[str, Any], language: str, zone: str | None = None) -> dict[str, Any]:
    """The payload as a webhook of `language` receives it: each alert also carries `summary_localised` (rendered
    from its machine fields, dates in `zone`), `rule_localised` and `rule_description_localised` (the rule's name
    and what it watches) and `language`; `summary` stays the English one and `rule` the rule's id."""
    alerts = [
        {
            **a,
            "language": locale.language_of(language),
            "summary_localised": locale.summary(a, language, zone),
            "rule_localised": locale.rule_title(a.get("rule"), language),
            "rule_description_localised": locale.rule_description(a.get("rule"), language),
        }
        for a in payload.get("alerts", [])
    ]
    return {**payload, "alerts": alerts} if "alerts" in payload else dict(payload)


def group_payload(
    organisation_id: str, group_key: str, alerts: list[dict[str, Any]], scheduled_at: datetime
) -> tuple[str, dict[str, Any]]:
    """The notification kind and body of a group: status, its alerts (as `alert_payload` gives them), group key."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    kind = "digest" if group_key.startswith(("digest:", "weekly:")) else ("alert" if status == "firing" else "resolved")
    return kind, {
        "version": PAYLOAD_VERSION,
        "kind": kind,
        "status": status,
        "organisation_id": organisation_id,
        "group_key": group_key,
        "scheduled_at": scheduled_at.isoformat(),
        "alerts": alerts,
    }


def notification_payload(
    organisation_id: str, group_key: str, alerts: Iterable[Alert], scheduled_at: datetime
) -> tuple[str, dict[str, Any]]:
    """The notification kind and body of a group's alerts, in the order given."""
    return group_payload(organisation_id, group_key, [alert_payload(a) for a in alerts], scheduled_at)


# --- chat cards: Microsoft Teams (Workflows webhook, Adaptive Card 1.4) and Slack (incoming webhook, Block Kit) ---
# Both are rendered from the group payload above at send time, with the links of the send (a signed acknowledge
# link per firing alert, the manage and unsubscribe links), so a retry carries the same card. tests/fixtures/notify/
# holds one of each.

CARD_ALERTS = 10  # alerts shown in one card; the rest are counted (Slack takes 50 blocks, Teams about 28 KB)
CARD_ACTIONS = 4  # acknowledge buttons, besides manage and unsubscribe: Teams' host config shows 6 actions at most
CARD_EVIDENCE = 5  # evidence links per alert; the webhook payload and the API keep them all
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

LABELS = {
    "en": {
        "firing": "Firing",
        "resolved": "Resolved",
        "digest": "Digest",
        "severity": "Severity",
        "status": "Status",
        "material": "Material",
        "rule": "Rule",
        "threshold": "Threshold",
        "since": "Since",
        "via": "Via",
        "ended": "Ended",
        "acknowledged": "Acknowledged",
        "evidence": "Evidence",
        "ack": "Acknowledge",
        "manage": "Manage alerts",
        "unsubscribe": "Unsubscribe this channel",
        "more": "and {n} more",
        "alerts": "{n} alerts",
        "test": "Test",
        "test_text": "A test message from mews for this channel: alerts you subscribe to will arrive like this.",
        "above": "{indicator} {value} is above the {level} threshold {threshold}",
        "cleared": "{indicator} {value} is back within {threshold}",
    },
    "nl": {
        "firing": "Actief",
        "resolved": "Opgelost",
        "digest": "Overzicht",
        "severity": "Ernst",
        "status": "Status",
        "material": "Grondstof",
        "rule": "Regel",
        "threshold": "Drempel",
        "since": "Sinds",
        "via": "Via",
        "ended": "Beëindigd",
        "acknowledged": "Bevestigd",
        "evidence": "Bewijs",
        "ack": "Bevestigen",
        "manage": "Meldingen beheren",
        "unsubscribe": "Dit kanaal afmelden",
        "more": "en nog {n}",
        "alerts": "{n} meldingen",
        "test": "Test",
        "test_text": "Een testbericht van mews voor dit kanaal: meldingen waarop u geabonneerd bent, komen zo binnen.",
        "above": "{indicator} {value} ligt boven de drempel {threshold} ({level})",
        "cleared": "{indicator} {value} ligt weer binnen {threshold}",
    },
}


def explanation(alert: dict[str, Any], language: str = "en") -> str:
    """Why the alert fires (or stopped): the indicator's value against the rule's threshold, in `language`."""
    words = LABELS.get(language, LABELS["en"])
    indicator = alert.get("indicator") or alert["rule"]
    value = locale.indicator_value(indicator, alert.get("value"), language)
    threshold = locale.indicator_value(indicator, alert.get("threshold"), language)
    label = locale.indicator_label(indicator, language)
    if alert["status"] == "resolved":
        return words["cleared"].format(indicator=label, value=value, threshold=threshold)
    return words["above"].format(
        indicator=label, value=value, threshold=threshold, level=locale.severity(alert["severity"], language)
    )


def _title(payload: dict[str, Any], words: dict[str, str], language: str = "en", zone: str | None = None) -> str:
    alerts = payload.get("alerts", [])
    if payload.get("kind") == "test":  # the console's test-send: the envelope without alerts
        return f"[{words['test'].upper()}] {words['test_text']}"
    head = words["digest"] if payload.get("kind") == "digest" else words[payload.get("status", "firing")]
    materials = ", ".join(sorted({locale.material_name(a["material"], language) for a in alerts}))
    what = (
        locale.summary(alerts[0], language, zone)
        if len(alerts) == 1
        else f"{words['alerts'].format(n=len(alerts))}: {materials}"
    )
    return f"[{head.upper()}] {what}"


def _ack_links(alerts: list[dict[str, Any]], links: dict[str, str]) -> list[tuple[dict[str, Any], str]]:
    """The firing, unacknowledged alerts with their signed acknowledge links, at most CARD_ACTIONS of them."""
    found = [
        (a, links[f"ack:{a['id']}"])
        for a in alerts
        if a["status"] == "firing" and not a.get("acknowledged_at") and f"ack:{a['id']}" in links
    ]
    return found[:CARD_ACTIONS]


LINK_ACTIONS = ("manage", "unsubscribe")  # the links of every card, after the acknowledge buttons


def _ack_title(alert: dict[str, Any], words: dict[str, str], language: str) -> str:
    return (
        f"{words['ack']}: {locale.material_name(alert['material'], language)}, "
        f"{locale.rule_title(alert['rule'], language)}"
    )


def _facts(alert: dict[str, Any], language: str, zone: str | None = None) -> list[tuple[str, str]]:
    words = LABELS.get(language, LABELS["en"])
    shown = locale.localise_alert(alert, language, zone)
    facts = [
        (words["severity"], shown["severity"]),
        (words["status"], shown["status"]),
        (words["material"], shown["material"]),
        (
            words["rule"],
            f"{shown['rule']}: {shown['rule_description']}" if shown["rule_description"] else shown["rule"],
        ),
        (words["threshold"], explanation(alert, language)),
        (words["since"], shown["starts_at"] or "?"),
    ]
    if alert.get("ends_at"):
        facts.append((words["ended"], shown["ends_at"]))
    if alert.get("via"):
        facts.append((words["via"], ", ".join(shown["via"])))
    if alert.get("acknowledged_at"):
        facts.append((words["acknowledged"], shown["acknowledged_at"]))
    return facts


def _evidence(alert: dict[str, Any], language: str = "en") -> list[tuple[str, str | None]]:
    """(label, url or None) of the first CARD_EVIDENCE pieces of evidence."""
    shown = locale.localise_alert({**alert, "evidence": alert.get("evidence", [])[:CARD_EVIDENCE]}, language)
    return [(f"{e['source'] or '?'} {e['kind']}".strip(), e["url"]) for e in shown["evidence"]]


def teams_message(
    payload: dict[str, Any], links: dict[str, str], language: str = "en", zone: str | None = None
) -> dict[str, Any]:
    """A Workflows webhook message with one Adaptive Card 1.4, as Alertmanager's msteamsv2 receiver sends."""
    words = LABELS.get(language, LABELS["en"])
    alerts = payload.get("alerts", [])
    colour = (
        "Accent"
        if payload.get("kind") == "test"
        else "Good"
        if payload.get("status") == "resolved"
        else "Attention"
        if any(a["severity"] == "critical" for a in alerts)
        else "Warning"
    )
    title = _title(payload, words, language, zone)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "style": "heading",
            "color": colour,
        }
    ]
    for alert in alerts[:CARD_ALERTS]:
        body.append(
            {
                "type": "TextBlock",
                "text": locale.summary(alert, language, zone),
                "wrap": True,
                "weight": "Bolder",
                "separator": True,
            }
        )
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in _facts(alert, language, zone)]})
        evidence = [f"[{label}]({url})" if url else label for label, url in _evidence(alert, language)]
        if evidence:
            body.append(
                {
                    "type": "TextBlock",
                    "text": f"{words['evidence']}: " + ", ".join(evidence),
                    "wrap": True,
                    "isSubtle": True,
                    "size": "Small",
                }
            )
    if len(alerts) > CARD_ALERTS:
        body.append({"type": "TextBlock", "text": words["more"].format(n=len(alerts) - CARD_ALERTS), "isSubtle": True})
    actions = [
        {"type": "Action.OpenUrl", "title": _ack_title(a, words, language), "url": url}
        for a, url in _ack_links(alerts, links)
    ]
    actions += [
        {"type": "Action.OpenUrl", "title": words[name], "url": links[name]} for name in LINK_ACTIONS if name in links
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
        "msteams": {"width": "Full"},
    }
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its formatting reference asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(
    payload: dict[str, Any], links: dict[str, str], language: str = "en", zone: str | None = None
) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit sections, context and buttons, with `text` for notifications."""
    words = LABELS.get(language, LABELS["en"])
    alerts = payload.get("alerts", [])
    title = _title(payload, words, language, zone)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{_mrkdwn(title)}*"}}]
    for alert in alerts[:CARD_ALERTS]:
        line = _mrkdwn(locale.summary(alert, language, zone))
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{line}*"},
                "fields": [
                    {"type": "mrkdwn", "text": f"*{t}*\n{_mrkdwn(v)}"[:2000]} for t, v in _facts(alert, language, zone)
                ][:10],
            }
        )
        evidence = [f"<{url}|{_mrkdwn(label)}>" if url else _mrkdwn(label) for label, url in _evidence(alert, language)]
        if evidence:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": (f"{words['evidence']}: " + ", ".join(evidence))[:3000]}],
                }
            )
    if len(alerts) > CARD_ALERTS:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": words["more"].format(n=len(alerts) - CARD_ALERTS)}],
            }
        )
    buttons = [
        {
            "type": "button",
            "action_id": f"ack:{a['id']}",
            "url": url,
            "style": "primary",
            "text": {"type": "plain_text", "text": _ack_title(a, words, language)[:75]},
        }
        for a, url in _ack_links(alerts, links)
    ]
    buttons += [
        {"type": "button", "action_id": name, "url": links[name], "text": {"type": "plain_text", "text": words[name]}}
        for name in LINK_ACTIONS
        if name in links
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": title, "blocks": blocks}
