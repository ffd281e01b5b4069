"""The outbox worker: claim due notifications, send each through its channel, record every attempt.

A notification is claimed by moving it to `sending` with a lease (its `next_attempt_at` pushed ahead); if the
process dies mid-send the lease runs out and another claim picks it up, with the same webhook id, so a receiver
can recognise the repeat. On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so several workers share the outbox;
on SQLite one worker runs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.notify.access import ack_url, manage_url
from services.notify.delivery import metrics
from services.notify.delivery.email import SmtpConfig, build_message, deliver_email, render_email
from services.notify.delivery.outcome import Outcome
from services.notify.delivery.retry import RetrySchedule
from services.notify.delivery.webhook import TargetCheck, deliver_webhook
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import unit_of_work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: the retry schedule, when to give up on a channel, how long a claim lasts."""

    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    disable_after_failures: int = 10
    lease: timedelta = timedelta(minutes=2)
    batch_size: int = 50


@dataclass(frozen=True)
class Claimed:
    """A claimed notification with what sending it needs, detached from the session."""

    id: str
    organisation_id: str
    kind: str
    webhook_id: str
    payload: dict[str, Any]
    attempts: int
    channel_id: str
    channel_kind: str
    target: str
    secret: str | None = field(repr=False)
    language: str
    breach_observed_at: datetime | None


def claim_due(session: Session, now: datetime, policy: DeliveryPolicy) -> list[Claimed]:
    """Take up to a batch of due notifications (pending, or sending with an expired lease) and mark them sending."""
    query = (select(models.Notification)
             .where(models.Notification.status.in_(("pending", "sending")),
                    models.Notification.next_attempt_at <= now)
             .order_by(models.Notification.next_attempt_at).limit(policy.batch_size))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for n in session.scalars(query).all():
        channel = session.get(models.Channel, n.channel_id)
        if channel is None:
            n.status, n.last_error = "cancelled", "channel deleted"
            continue
        if not channel.enabled and n.kind != "admin_notice":
            n.status, n.last_error = "cancelled", f"channel disabled: {channel.disabled_reason or ''}"
            continue
        if n.status == "sending":
            log.warning("claim lease expired; sending again", extra={"notification_id": n.id,
                                                                   "webhook_id": n.webhook_id})
        n.status, n.attempts, n.next_attempt_at = "sending", n.attempts + 1, now + policy.lease
        claimed.append(Claimed(n.id, n.organisation_id, n.kind, n.webhook_id, dict(n.payload or {}), n.attempts,
                               channel.id, channel.kind, channel.target, channel.secret, channel.language,
                               n.breach_observed_at))
    return claimed


def admin_recipients(session: Session, organisation_id: str) -> list[str]:
    """Email addresses of the organisation's admins."""
    return list(session.scalars(select(models.User.email).where(models.User.organisation_id == organisation_id,
                                                                models.User.role == "admin")
                                .order_by(models.User.email)))


def disable_channel(session: Session, channel: models.Channel, reason: str, now: datetime) -> int:
    """Disable a channel, cancel what waits for it, and queue a notice to the organisation's admins."""
    channel.enabled, channel.disabled_reason = False, reason[:500]
    cancelled = session.execute(  # type: ignore[attr-defined]
        update(models.Notification)
        .where(models.Notification.channel_id == channel.id, models.Notification.status == "pending",
               models.Notification.kind != "admin_notice")
        .values(status="cancelled", last_error=f"channel disabled: {reason}"[:2000])).rowcount
    recipients = admin_recipients(session, channel.organisation_id)
    if recipients:
        # The notice rides on the disabled channel's row but goes by email to the admins named in its payload.
        session.add(models.Notification(
            organisation_id=channel.organisation_id, channel_id=channel.id, kind="admin_notice",
            group_key=f"admin_notice:{channel.id}", alert_ids=[], next_attempt_at=now, created_at=now,
            payload={"recipients": recipients, "channel_id": channel.id, "reason": reason,
                     "target_host": urlsplit(channel.target).hostname or "", "disabled_at": now.isoformat()}))
    log.warning("channel disabled", extra={"channel_id": channel.id, "organisation_id": channel.organisation_id,
                                           "reason": reason, "cancelled": cancelled, "admins": len(recipients)})
    return cancelled


def record_outcome(session: Session, claimed: Claimed, outcome: Outcome, now: datetime,
                   policy: DeliveryPolicy) -> str:
    """Write the attempt and move the notification on: delivered, retried later, failed, or cancelled."""
    n = session.get(models.Notification, claimed.id)
    if n is None:
        return "gone"
    session.add(models.DeliveryAttempt(notification_id=n.id, attempted_at=now, outcome=outcome.outcome,
                                       status_code=outcome.status_code, error=outcome.error))
    channel = session.get(models.Channel, n.channel_id)
    label = "email" if n.kind == "admin_notice" else claimed.channel_kind
    metrics.DELIVERIES.labels(label, outcome.outcome).inc()
    if outcome.delivered:
        n.status, n.delivered_at, n.last_error = "delivered", now, None
        if channel is not None and n.kind != "admin_notice":
            channel.consecutive_failures = 0
        if n.breach_observed_at is not None:
            metrics.BREACH_TO_DELIVERY.labels(label).observe((now - n.breach_observed_at).total_seconds())
        return "delivered"
    n.last_error = outcome.error
    if outcome.outcome == "gone" and channel is not None and n.kind != "admin_notice":
        n.status = "cancelled"
        disable_channel(session, channel, f"receiver answered 410 Gone at {now.isoformat()}", now)
        return "cancelled"
    if not policy.schedule.exhausted(n.attempts):
        n.status, n.next_attempt_at = "pending", now + policy.schedule.delay(n.attempts)
        metrics.RETRIES.labels(label).inc()
        return "retry"
    n.status = "failed"
    if channel is not None and n.kind != "admin_notice":
        channel.consecutive_failures += 1
        if channel.enabled and channel.consecutive_failures >= policy.disable_after_failures:
            disable_channel(session, channel, f"{channel.consecutive_failures} notifications in a row failed; "
                            f"last: {outcome.error}", now)
    return "failed"


def email_links(settings: NotifySettings, claimed: Claimed, now: datetime) -> dict[str, str]:
    """The manage link, and a signed acknowledge link for each firing alert."""
    links = {"manage": manage_url(settings)}
    for alert in claimed.payload.get("alerts", []):
        if alert.get("status") == "firing":
            links[f"ack:{alert['id']}"] = ack_url(settings, alert["id"], claimed.organisation_id, now)
    return links


@dataclass
class OutboxWorker:
    """Sends what the outbox holds; one `run_once` is one claim, send and record round."""

    sessions: sessionmaker[Session]
    http: httpx.AsyncClient
    smtp: SmtpConfig
    check_target: TargetCheck
    settings: NotifySettings
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    clock: Any = None  # () -> aware datetime; injected by tests

    def now(self) -> datetime:
        from services.notify.store.models import utcnow

        return self.clock() if self.clock else utcnow()

    async def send(self, claimed: Claimed) -> Outcome:
        """Send one claimed notification through its channel; never raises."""
        now = self.now()
        try:
            if claimed.kind == "admin_notice" or claimed.channel_kind == "email":
                recipients = claimed.payload.get("recipients") if claimed.kind == "admin_notice" else [claimed.target]
                links = email_links(self.settings, claimed, now)
                rendered = render_email(claimed.kind, claimed.payload, claimed.language, links)
                message = build_message(self.smtp, list(recipients or []), rendered, claimed.webhook_id, now)
                return await deliver_email(self.smtp, message)
            if not claimed.secret:
                return Outcome("retry", None, "webhook channel has no signing secret")
            return await deliver_webhook(self.http, claimed.target, claimed.secret, claimed.webhook_id,
                                         claimed.payload, now, self.check_target)
        except Exception as exc:  # a bug in one notification must not stop the others; it is retried
            log.exception("delivery raised", extra={"notification_id": claimed.id})
            return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])

    async def run_once(self) -> int:
        """One round: claim, send concurrently, record; returns how many were attempted."""
        with unit_of_work(self.sessions) as session:
            claimed = claim_due(session, self.now(), self.policy)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self.send(c) for c in claimed))
        for c, outcome in zip(claimed, outcomes, strict=True):
            with unit_of_work(self.sessions) as session:
                state = record_outcome(session, c, outcome, self.now(), self.policy)
            log.info("delivery attempt", extra={"notification_id": c.id, "webhook_id": c.webhook_id,
                                                "channel_id": c.channel_id, "kind": c.kind, "attempt": c.attempts,
                                                "outcome": outcome.outcome, "status_code": outcome.status_code,
                                                "error": outcome.error, "state": state})
        return len(claimed)


def release_claims(session: Session, now: datetime) -> int:
    """Make every `sending` notification due now: on SQLite only one worker runs, so they are leftovers of a crash."""
    result = session.execute(update(models.Notification).where(models.Notification.status == "sending")
                             .values(status="pending", next_attempt_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def observe_outbox(session: Session, now: datetime) -> None:
    """Set the outbox gauges: depth per channel kind, and the age of the oldest due notification."""
    rows = session.execute(select(models.Channel.kind, func.count()).join(
        models.Notification, models.Notification.channel_id == models.Channel.id)
        .where(models.Notification.status.in_(("pending", "sending"))).group_by(models.Channel.kind)).all()
    depth = dict(rows)
    for kind in models.CHANNEL_KINDS:
        metrics.OUTBOX_DEPTH.labels(kind).set(depth.get(kind, 0))
    oldest = session.scalar(select(func.min(models.Notification.next_attempt_at)).where(
        or_(models.Notification.status == "pending", models.Notification.status == "sending"),
        models.Notification.next_attempt_at <= now))
    metrics.OLDEST_PENDING.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
