"""The outbox's queries: claim due notifications with a lease, keep the lease, record each attempt, observe depth.

A claim moves a notification to `sending`, counts the attempt and pushes `next_attempt_at` ahead by the lease;
a claim whose lease ran out is due again, with the same webhook id, so a receiver can recognise the repeat.
The attempt number taken at claim time fences the claim: an outcome, a lease extension or a release applies only
while the notification is still `sending` under that number, so a claim that another worker has taken over is
never recorded twice. On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so several workers share the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, defer

from services.notify.delivery.outcome import Outcome
from services.notify.delivery.retry import RetrySchedule
from services.notify.store import models

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
    attempts: int  # the attempt this claim makes; fences every later write of the claim
    channel_id: str
    channel_kind: str
    target: str = field(repr=False)  # a Teams or Slack URL is a secret
    secret: str | None = field(repr=False)
    language: str
    breach_observed_at: datetime | None
    group_key: str = ""
    created_at: datetime | None = None
    timezone: str = "UTC"  # the channel's, for dates in what is sent


def _held(claims: Iterable[Claimed]) -> Any:
    """Rows still `sending` under these claims' attempt numbers."""
    return and_(
        models.Notification.status == "sending",
        or_(*(and_(models.Notification.id == c.id, models.Notification.attempts == c.attempts) for c in claims)),
    )


def claim_due(
    session: Session,
    now: datetime,
    policy: DeliveryPolicy,
    *,
    limit: int | None = None,
    skip_channels: Collection[str] = (),
) -> list[Claimed]:
    """Take up to `limit` due notifications (pending, or sending with an expired lease) and mark them sending.

    `skip_channels` are channels the caller cannot send to now (their receiver is busy): their rows stay due.
    """
    query = (
        select(models.Notification, models.Channel)
        .outerjoin(models.Channel, models.Channel.id == models.Notification.channel_id)
        .where(models.Notification.status.in_(("pending", "sending")), models.Notification.next_attempt_at <= now)
        .order_by(models.Notification.next_attempt_at)
        .limit(policy.batch_size if limit is None else limit)
    )
    if skip_channels:
        query = query.where(models.Notification.channel_id.not_in(sorted(skip_channels)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=models.Notification)
    rows = session.execute(query).all()
    claimed = []
    for n, channel in rows:
        if channel is None:
            n.status, n.last_error = "cancelled", "channel deleted"
            continue
        if not channel.enabled and n.kind != "admin_notice":
            n.status, n.last_error = "cancelled", f"channel disabled: {channel.disabled_reason or ''}"
            continue
        if n.status == "sending":
            log.warning(
                "claim lease expired; sending again", extra={"notification_id": n.id, "webhook_id": n.webhook_id}
            )
        n.status, n.attempts, n.next_attempt_at = "sending", n.attempts + 1, now + policy.lease
        claimed.append(
            Claimed(
                n.id,
                n.organisation_id,
                n.kind,
                n.webhook_id,
                dict(n.payload or {}),
                n.attempts,
                channel.id,
                channel.kind,
                channel.target,
                channel.secret,
                channel.language,
                n.breach_observed_at,
                n.group_key,
                n.created_at,
                channel.timezone or "UTC",
            )
        )
    return claimed


def extend_leases(session: Session, claims: Collection[Claimed], until: datetime) -> int:
    """Push the leases of claims still being worked on to `until`; returns how many were still held."""
    if not claims:
        return 0
    result = session.execute(update(models.Notification).where(_held(claims)).values(next_attempt_at=until))
    return int(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, claims: Collection[Claimed], now: datetime) -> int:
    """Hand back claims that were never sent (a stopping worker): due now, the attempt not counted."""
    if not claims:
        return 0
    result = session.execute(
        update(models.Notification)
        .where(_held(claims))
        .values(status="pending", attempts=models.Notification.attempts - 1, next_attempt_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_claims(session: Session, now: datetime) -> int:
    """Make every `sending` notification due now: on SQLite only one worker runs, so they are leftovers of a crash."""
    result = session.execute(
        update(models.Notification)
        .where(models.Notification.status == "sending")
        .values(status="pending", next_attempt_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def admin_recipients(session: Session, organisation_id: str) -> list[str]:
    """Email addresses of the organisation's admins."""
    return list(
        session.scalars(
            select(models.User.email)
            .where(models.User.organisation_id == organisation_id, models.User.role == "admin")
            .order_by(models.User.email)
        )
    )


def disable_channel(
    session: Session, channel: models.Channel, reason: str, now: datetime, cause: dict[str, Any] | None = None
) -> int:
    """Disable a channel, cancel what waits for it, and queue a notice to the organisation's admins.

    `cause` is the reason as fields (`{"kind": "gone", "status_code": 410}`, `{"kind": "failures", "count": ...,
    "last_error": ...}`), so the notice says it in the channel's language; `reason` is the English line kept on
    the channel."""
    channel.enabled, channel.disabled_reason = False, reason[:500]
    cancelled = session.execute(  # type: ignore[attr-defined]
        update(models.Notification)
        .where(
            models.Notification.channel_id == channel.id,
            models.Notification.status == "pending",
            models.Notification.kind != "admin_notice",
        )
        .values(status="cancelled", last_error=f"channel disabled: {reason}"[:2000])
    ).rowcount
    recipients = admin_recipients(session, channel.organisation_id)
    if recipients:
        # The notice rides on the disabled channel's row but goes by email to the admins named in its payload.
        session.add(
            models.Notification(
                organisation_id=channel.organisation_id,
                channel_id=channel.id,
                kind="admin_notice",
                group_key=f"admin_notice:{channel.id}",
                alert_ids=[],
                next_attempt_at=now,
                created_at=now,
                payload={
                    "recipients": recipients,
                    "channel_id": channel.id,
                    "channel_kind": channel.kind,
                    "reason": reason,
                    "cause": cause or {},
                    "target_host": urlsplit(channel.target).hostname or "",
                    "disabled_at": now.isoformat(),
                },
            )
        )
    log.warning(
        "channel disabled",
        extra={
            "channel_id": channel.id,
            "organisation_id": channel.organisation_id,
            "reason": reason,
            "cancelled": cancelled,
            "admins": len(recipients),
        },
    )
    return cancelled


def record_outcome(session: Session, claimed: Claimed, outcome: Outcome, now: datetime, policy: DeliveryPolicy) -> str:
    """Write the attempt and move the notification on: delivered, retried later, failed, or cancelled.

    Returns the new state, or `superseded` when the claim is no longer held (its lease ran out and another
    claim took the notification over): that claim records the attempt, this one records nothing.
    """
    return record_outcomes(session, [(claimed, outcome, now)], policy)[0]


def record_outcomes(
    session: Session, results: Sequence[tuple[Claimed, Outcome, datetime]], policy: DeliveryPolicy
) -> list[str]:
    """`record_outcome` for many finished sends at once: their rows read in two queries, not two each."""
    ids = sorted({claimed.id for claimed, _, _ in results})
    # The payload (every alert of the notification) was sent already: recording never reads it back.
    rows = {
        n.id: n
        for n in session.scalars(
            select(models.Notification)
            .where(models.Notification.id.in_(ids))
            .options(defer(models.Notification.payload), defer(models.Notification.alert_ids))
            .order_by(models.Notification.id)
            .with_for_update()
        )
    }
    channels = (
        {
            c.id: c
            for c in session.scalars(
                select(models.Channel).where(models.Channel.id.in_(sorted({n.channel_id for n in rows.values()})))
            )
        }
        if rows
        else {}
    )
    return [
        _record(session, rows.get(claimed.id), channels, claimed, outcome, now, policy)
        for claimed, outcome, now in results
    ]


def _record(
    session: Session,
    n: models.Notification | None,
    channels: dict[str, models.Channel],
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    policy: DeliveryPolicy,
) -> str:
    if n is None:
        return "gone"
    if n.status != "sending" or n.attempts != claimed.attempts:
        log.warning(
            "claim superseded; outcome not recorded",
            extra={
                "notification_id": n.id,
                "webhook_id": n.webhook_id,
                "attempt": claimed.attempts,
                "outcome": outcome.outcome,
            },
        )
        return "superseded"
    attempt = models.DeliveryAttempt(
        notification_id=n.id,
        attempted_at=now,
        outcome=outcome.outcome,
        status_code=outcome.status_code,
        error=outcome.error,
    )
    session.add(attempt)
    channel = channels.get(n.channel_id)
    if outcome.delivered:
        n.status, n.delivered_at, n.last_error = "delivered", now, None
        if channel is not None and n.kind != "admin_notice":
            channel.consecutive_failures = 0
        return "delivered"
    n.last_error = outcome.error
    if outcome.outcome == "gone" and channel is not None and n.kind != "admin_notice":
        n.status = "cancelled"
        if channel.enabled:  # two answers of 410 in one batch switch the channel off, and tell the admins, once
            disable_channel(
                session,
                channel,
                f"receiver answered {outcome.error}",
                now,
                {"kind": "gone", "status_code": outcome.status_code},
            )
        return "cancelled"
    # A refused target (the outbound policy) is refused again next time, and a rejected message is rejected
    # again: failed at once, never retried.
    if outcome.outcome not in ("refused", "rejected") and not policy.schedule.exhausted(n.attempts):
        delay = policy.schedule.delay(n.attempts)
        if outcome.retry_after is not None:  # the receiver's Retry-After, when longer than our own wait
            delay = max(delay, timedelta(seconds=outcome.retry_after))
        n.status, n.next_attempt_at = "pending", now + delay
        return "retry"
    n.status = "failed"
    if attempt.outcome == "retry":
        attempt.outcome = "failed"  # the last try: no retry follows
    if channel is not None and n.kind != "admin_notice":
        channel.consecutive_failures += 1
        if channel.enabled and channel.consecutive_failures >= policy.disable_after_failures:
            disable_channel(
                session,
                channel,
                f"{channel.consecutive_failures} notifications in a row failed; last: {outcome.error}",
                now,
                {"kind": "failures", "count": channel.consecutive_failures, "last_error": outcome.error},
            )
    return "failed"


def next_due_at(session: Session, *, skip_channels: Collection[str] = ()) -> datetime | None:
    """When the earliest notification waiting (pending, or sending under a lease) falls due, if any does."""
    query = select(func.min(models.Notification.next_attempt_at)).where(
        models.Notification.status.in_(("pending", "sending"))
    )
    if skip_channels:
        query = query.where(models.Notification.channel_id.not_in(sorted(skip_channels)))
    return session.scalar(query)


@dataclass(frozen=True)
class OutboxState:
    """What the outbox holds: notifications pending or being sent per channel kind, and the oldest one due."""

    depth: dict[str, int]
    oldest_due_at: datetime | None


def outbox_state(session: Session, now: datetime) -> OutboxState:
    """Depth per channel kind, and when the oldest notification due and not yet delivered fell due."""
    rows = session.execute(
        select(models.Channel.kind, func.count())
        .join(models.Notification, models.Notification.channel_id == models.Channel.id)
        .where(models.Notification.status.in_(("pending", "sending")))
        .group_by(models.Channel.kind)
    ).all()
    oldest = session.scalar(
        select(func.min(models.Notification.next_attempt_at)).where(
            models.Notification.status.in_(("pending", "sending")), models.Notification.next_attempt_at <= now
        )
    )
    return OutboxState({kind: int(count) for kind, count in rows}, oldest)
