"""The webhook payload, version 1: what a receiver gets for a group of alerts (and what emails are rendered from).

The shape is a contract with every receiver: add fields, never change their meaning or type; a new meaning is a
new `version`. tests/unit/notify/test_webhook_payload.py pins it against a stored example.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store import models

PAYLOAD_VERSION = "1"


def alert_payload(row: models.Alert) -> dict[str, Any]:
    """One alert as a receiver sees it: the breach's fields, evidence and acknowledgement state."""
    breach = row.breach or {}
    return {
        "id": row.id, "fingerprint": row.fingerprint, "material": row.material, "rule": row.rule,
        "severity": row.severity, "status": row.status, "classification": row.classification,
        "indicator": breach.get("indicator"), "value": breach.get("value"), "threshold": breach.get("threshold"),
        "warning_threshold": breach.get("warning_threshold"), "critical_threshold": breach.get("critical_threshold"),
        "starts_at": row.starts_at.isoformat(), "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "observed_at": breach.get("observed_at"), "summary": row.summary, "evidence": breach.get("evidence", []),
        "via": list(row.via or ()),
        "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
    }


def notification_payload(organisation_id: str, group_key: str, rows: Iterable[models.Alert],
                         scheduled_at: datetime) -> tuple[str, dict[str, Any]]:
    """The notification kind and body of a group's alerts (in the order given): status, alerts, group key."""
    alerts = [alert_payload(row) for row in rows]
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    kind = "digest" if group_key.startswith("digest:") else ("alert" if status == "firing" else "resolved")
    return kind, {"version": PAYLOAD_VERSION, "kind": kind, "status": status, "organisation_id": organisation_id,
                  "group_key": group_key, "scheduled_at": scheduled_at.isoformat(), "alerts": alerts}


def group_payload(session: Session, organisation_id: str, group_key: str, alert_ids: list[str],
                  scheduled_at: datetime) -> tuple[str, dict[str, Any]]:
    """The notification kind and body of a group, its alerts read from the database in `alert_ids` order."""
    rows = {r.id: r for r in session.scalars(select(models.Alert).where(models.Alert.id.in_(alert_ids)))}
    return notification_payload(organisation_id, group_key, [rows[i] for i in alert_ids if i in rows], scheduled_at)
