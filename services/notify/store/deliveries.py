"""Deliveries: the outbox as the API shows it, with each attempt, and the replay of failed notifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store.errors import Conflict, NotFound
from services.notify.store.models import Channel, DeliveryAttempt, Notification, utcnow

REPLAYABLE = ("failed", "cancelled")


def list_deliveries(
    session: Session, organisation_id: str, *, status: str | None = None, limit: int = 200
) -> list[Notification]:
    """An organisation's notifications, newest first."""
    query = select(Notification).where(Notification.organisation_id == organisation_id)
    if status is not None:
        query = query.where(Notification.status == status)
    return list(session.scalars(query.order_by(Notification.created_at.desc(), Notification.id).limit(limit)))


def get_delivery(session: Session, organisation_id: str, notification_id: str) -> Notification:
    """One notification of the organisation."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.organisation_id != organisation_id:
        raise NotFound("delivery not found")
    return notification


def list_attempts(session: Session, notification_id: str) -> list[DeliveryAttempt]:
    """Every attempt at one notification, in order."""
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.notification_id == notification_id)
            .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
        )
    )


def replay_delivery(
    session: Session, organisation_id: str, notification_id: str, now: datetime | None = None
) -> Notification:
    """Send a failed notification again from the start, with the same webhook id so receivers can de-duplicate."""
    notification = get_delivery(session, organisation_id, notification_id)
    if notification.status not in REPLAYABLE:
        raise Conflict(f"only {' or '.join(REPLAYABLE)} deliveries can be replayed, this one is {notification.status}")
    channel = session.get(Channel, notification.channel_id)
    if channel is not None and not channel.enabled:
        raise Conflict("the channel is disabled; enable it before replaying")
    notification.status = "pending"
    notification.attempts = 0
    notification.next_attempt_at = now or utcnow()
    notification.last_error = None
    session.flush()
    return notification
