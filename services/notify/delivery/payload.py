"""The webhook payload, version 1: what a receiver gets for a group of alerts (and what emails are rendered from).

The shape is a contract with every receiver: add fields, never change their meaning or type; a new meaning is a
new `version`. tests/unit/notify/test_webhook_payload.py pins it against a stored example.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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
        "id": alert.id, "fingerprint": alert.fingerprint, "material": alert.material, "rule": alert.rule,
        "severity": alert.severity.value, "status": alert.status.value,
        "classification": alert.classification.value,
        "indicator": breach.get("indicator"), "parameter": breach.get("parameter", ""),
        "value": breach.get("value"), "threshold": breach.get("threshold"),
        "warning_threshold": breach.get("warning_threshold"), "critical_threshold": breach.get("critical_threshold"),
        "starts_at": _iso(alert.starts_at), "ends_at": _iso(alert.ends_at),
        "observed_at": breach.get("observed_at"), "summary": _summary(alert), "evidence": breach.get("evidence", []),
        "via": list(alert.via), "acknowledged_at": _iso(alert.acknowledged_at),
        "open_since": _iso(alert.open_since),
    }


def group_payload(organisation_id: str, group_key: str, alerts: list[dict[str, Any]],
                  scheduled_at: datetime) -> tuple[str, dict[str, Any]]:
    """The notification kind and body of a group: status, its alerts (as `alert_payload` gives them), group key."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    kind = "digest" if group_key.startswith("digest:") else ("alert" if status == "firing" else "resolved")
    return kind, {"version": PAYLOAD_VERSION, "kind": kind, "status": status, "organisation_id": organisation_id,
                  "group_key": group_key, "scheduled_at": scheduled_at.isoformat(), "alerts": alerts}


def notification_payload(organisation_id: str, group_key: str, alerts: Iterable[Alert],
                         scheduled_at: datetime) -> tuple[str, dict[str, Any]]:
    """The notification kind and body of a group's alerts, in the order given."""
    return group_payload(organisation_id, group_key, [alert_payload(a) for a in alerts], scheduled_at)
