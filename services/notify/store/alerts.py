"""Alerts as the API shows them: what fires for an organisation, and who acknowledged it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store.errors import NotFound
from services.notify.store.models import Alert, utcnow
from shared.events import Classification


def _visible_classifications(clearance: str) -> list[str]:
    # An alert above the organisation's clearance should never exist; if one does, it stays hidden.
    return [level.value for level in Classification if Classification(clearance).allows(level)]


def list_alerts(
    session: Session,
    organisation_id: str,
    clearance: str,
    *,
    status: str | None = None,
    material: str | None = None,
    severity: str | None = None,
    limit: int = 200,
) -> list[Alert]:
    """An organisation's alerts, most recently changed first, within its clearance."""
    query = select(Alert).where(
        Alert.organisation_id == organisation_id, Alert.classification.in_(_visible_classifications(clearance))
    )
    if status is not None:
        query = query.where(Alert.status == status)
    if material is not None:
        query = query.where(Alert.material == material)
    if severity is not None:
        query = query.where(Alert.severity == severity)
    return list(session.scalars(query.order_by(Alert.updated_at.desc(), Alert.id).limit(limit)))


def get_alert(session: Session, organisation_id: str, clearance: str, alert_id: str) -> Alert:
    """One alert of the organisation within its clearance."""
    alert = session.get(Alert, alert_id)
    if (
        alert is None
        or alert.organisation_id != organisation_id
        or alert.classification not in _visible_classifications(clearance)
    ):
        raise NotFound("alert not found")
    return alert


def acknowledge_alert(
    session: Session, organisation_id: str, clearance: str, alert_id: str, *, by: str, now: datetime | None = None
) -> Alert:
    """Record who acknowledged an alert; the first acknowledgement stands."""
    alert = get_alert(session, organisation_id, clearance, alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now or utcnow()
        alert.acknowledged_by = by[:320]
        session.flush()
    return alert
