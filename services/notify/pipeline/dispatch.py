"""The shell around the stages: breaches in, alert rows and outbox rows out, in the caller's one transaction.

`dispatch_breaches` does for each breach: index lookup -> classification gate -> upsert the organisation's
alert -> inhibit -> silence -> route -> de-duplicate -> group -> write notifications to the outbox and the
notification log. The caller commits, and only then commits the Kafka offset.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from services.notify.delivery.payload import group_payload
from services.notify.matching import SubscriptionIndex
from services.notify.pipeline.alert import (
    Alert,
    ChannelRoute,
    Decision,
    GroupState,
    LogEntry,
    PipelineContext,
    Silence,
    Timing,
)
from services.notify.pipeline.stages import (
    DECISIONS,
    classification_gate,
    deduplicate,
    group,
    inhibit,
    route,
    run_pipeline,
    silence,
)
from services.notify.store import models
from shared.events import BreachRaised, BreachStatus, Classification, Severity

log = logging.getLogger(__name__)

AFTER_UPSERT = (inhibit, silence, route, deduplicate, group)


@dataclass
class DispatchReport:
    """What one batch came to: alerts written, notifications created or joined, and every decision."""

    alerts_upserted: int = 0
    notifications_created: int = 0
    notifications_joined: int = 0
    decisions: list[Decision] = field(default_factory=list)


def breach_classification(breach: BreachRaised) -> Classification:
    """The most restricted of the breach and its evidence: an alert is as sensitive as its most sensitive input."""
    return Classification.most_restricted([breach.classification, *(e.classification for e in breach.evidence)])


def alerts_for_breach(index: SubscriptionIndex, breach: BreachRaised) -> list[Alert]:
    """One candidate alert per organisation the breach concerns, with why (via) and where (channels)."""
    # A resolution goes to every channel that may have heard the firing; de-duplication drops the rest.
    severity = Severity.CRITICAL if breach.status == BreachStatus.RESOLVED else breach.severity
    data = breach.model_dump(mode="json")
    return [Alert(organisation_id=org, fingerprint=breach.fingerprint, material=breach.material, rule=breach.rule,
                  severity=breach.severity, status=breach.status, classification=breach_classification(breach),
                  starts_at=breach.starts_at, ends_at=breach.ends_at, observed_at=breach.observed_at,
                  summary=breach.summary, breach=data, via=tuple(match.via), channel_ids=tuple(match.channel_ids))
            for org, match in sorted(index.lookup(breach.material, severity).items())]


def orphaned_resolutions(session: Session, breaches: list[BreachRaised],
                         matched: set[tuple[str, str]]) -> list[Alert]:
    """Resolutions for organisations whose firing alert no subscription covers any more: the row must still close."""
    resolved = {b.fingerprint: b for b in breaches if b.status == BreachStatus.RESOLVED}
    if not resolved:
        return []
    rows = session.execute(select(models.Alert.organisation_id, models.Alert.fingerprint, models.Alert.via)
                           .where(models.Alert.fingerprint.in_(sorted(resolved)), models.Alert.status == "firing"))
    out = []
    for organisation_id, fingerprint, via in rows:
        if (organisation_id, fingerprint) in matched:
            continue
        b = resolved[fingerprint]
        out.append(Alert(organisation_id=organisation_id, fingerprint=fingerprint, material=b.material, rule=b.rule,
                         severity=b.severity, status=b.status, classification=breach_classification(b),
                         starts_at=b.starts_at, ends_at=b.ends_at, observed_at=b.observed_at, summary=b.summary,
                         breach=b.model_dump(mode="json"), via=tuple(via or ())))
    return out


def _from_row(row: models.Alert, **overrides: Any) -> Alert:
    breach = row.breach or {}
    observed = breach.get("observed_at")
    return Alert(organisation_id=row.organisation_id, fingerprint=row.fingerprint, material=row.material,
                 rule=row.rule, severity=Severity(row.severity), status=BreachStatus(row.status),
                 classification=Classification(row.classification), starts_at=row.starts_at, summary=row.summary,
                 breach=breach, ends_at=row.ends_at, updated_at=row.updated_at,
                 observed_at=datetime.fromisoformat(observed) if observed else None, via=tuple(row.via or ()),
                 id=row.id, acknowledged_at=row.acknowledged_at, **overrides)


def upsert_alert(session: Session, ctx: PipelineContext, alert: Alert) -> Alert | None:
    """Create or update the organisation's alert row; returns the alert with its id, or None when dropped."""
    row = session.scalar(select(models.Alert).where(models.Alert.organisation_id == alert.organisation_id,
                                                    models.Alert.fingerprint == alert.fingerprint)
                         .with_for_update())
    if row is None:
        if not alert.firing:
            ctx.decide("upsert", "drop", "resolution of an alert this organisation never had", alert)
            return None
        row = models.Alert(organisation_id=alert.organisation_id, fingerprint=alert.fingerprint,
                           material=alert.material, rule=alert.rule, severity=alert.severity.value,
                           status=alert.status.value, starts_at=alert.starts_at, ends_at=None, updated_at=ctx.now,
                           summary=alert.summary, breach=alert.breach, classification=alert.classification.value,
                           via=list(alert.via))
        session.add(row)
        session.flush()
        ctx.decide("upsert", "created", f"new {alert.state} alert", alert)
        return dataclasses.replace(alert, id=row.id, updated_at=ctx.now)
    stored_observed = (row.breach or {}).get("observed_at")
    if alert.observed_at and stored_observed and alert.observed_at < datetime.fromisoformat(stored_observed):
        ctx.decide("upsert", "stale", f"observed {alert.observed_at.isoformat()}, older than the alert", alert)
        return None
    before = "resolved" if row.status == "resolved" else f"firing:{row.severity}"
    changed = before != alert.state
    if changed and alert.firing:
        row.acknowledged_at, row.acknowledged_by = None, None  # new information deserves a new look
        if row.status == "resolved":
            row.starts_at = alert.starts_at
    row.severity, row.status = alert.severity.value, alert.status.value
    row.ends_at = alert.ends_at if not alert.firing else None
    row.summary, row.breach, row.classification = alert.summary, alert.breach, alert.classification.value
    row.via = sorted(set(row.via or ()) | set(alert.via)) if alert.firing and not changed else list(alert.via)
    row.updated_at = ctx.now
    ctx.decide("upsert", "changed" if changed else "unchanged", f"{before} -> {alert.state}", alert)
    return _from_row(row, channel_ids=alert.channel_ids, changed=changed)


def open_notification() -> tuple[Any, ...]:
    """Conditions of a notification still open to more alerts: never claimed, never tried (a replay was)."""
    tried = select(models.DeliveryAttempt.id).where(models.DeliveryAttempt.notification_id == models.Notification.id)
    return (models.Notification.status == "pending", models.Notification.attempts == 0, ~tried.exists())


def load_context(session: Session, ctx: PipelineContext, organisation_ids: Iterable[str],
                 alerts: list[Alert]) -> None:
    """Fill the context with what the stages after the upsert read: firing alerts, silences, channels, nflog, groups."""
    orgs = sorted(set(organisation_ids))
    if not orgs:
        return
    ctx.firing = [_from_row(r) for r in session.scalars(select(models.Alert).where(
        models.Alert.organisation_id.in_(orgs), models.Alert.status == "firing"))]
    ctx.silences = [Silence(s.organisation_id, s.starts_at, s.ends_at, s.material, s.rule, s.severity, s.id)
                    for s in session.scalars(select(models.Silence).where(
                        models.Silence.organisation_id.in_(orgs), models.Silence.ends_at > ctx.now))]
    ctx.channels = {c.id: ChannelRoute(c.id, c.organisation_id, c.mode, c.enabled)
                    for c in session.scalars(select(models.Channel).where(models.Channel.organisation_id.in_(orgs)))}
    fingerprints = sorted({a.fingerprint for a in alerts})
    ctx.log = {(e.organisation_id, e.group_key, e.fingerprint): LogEntry(e.last_status, e.last_sent_at)
               for e in session.scalars(select(models.NotificationLogEntry).where(
                   models.NotificationLogEntry.organisation_id.in_(orgs),
                   models.NotificationLogEntry.fingerprint.in_(fingerprints)))}
    channel_ids = sorted(ctx.channels)
    opened: dict[str, datetime] = {}
    flushed: dict[str, datetime] = {}
    is_open = and_(*open_notification())
    rows = session.execute(select(models.Notification.group_key, is_open, models.Notification.next_attempt_at,
                                  models.Notification.payload, models.Notification.created_at)
                           .where(models.Notification.channel_id.in_(channel_ids),
                                  models.Notification.kind != "admin_notice"))
    for key, still_open, next_at, payload, created_at in rows:
        if still_open:
            opened[key] = min(next_at, opened.get(key, next_at))
        else:
            scheduled = datetime.fromisoformat(payload["scheduled_at"]) if payload.get("scheduled_at") else created_at
            flushed[key] = max(scheduled, flushed.get(key, scheduled))
    ctx.groups = {key: GroupState(open_due_at=opened.get(key), last_flush_at=flushed.get(key))
                  for key in set(opened) | set(flushed)}


def enqueue(session: Session, ctx: PipelineContext, alerts: list[Alert], report: DispatchReport) -> None:
    """Write each group's alerts into its open notification, or a new one due when the group stage said."""
    groups: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    for alert in alerts:
        assert alert.channel_id is not None, "route before enqueue"
        assert alert.group_key is not None, "route before enqueue"
        assert alert.due_at is not None, "group before enqueue"
        assert alert.id, "upsert before enqueue"
        groups[(alert.channel_id, alert.group_key)].append(alert)
    for (channel_id, group_key), members in groups.items():
        organisation_id = members[0].organisation_id
        observed = [a.observed_at for a in members if a.observed_at and a.changed]
        notification = session.scalar(select(models.Notification).where(
            models.Notification.channel_id == channel_id, models.Notification.group_key == group_key,
            *open_notification()).order_by(models.Notification.next_attempt_at).limit(1).with_for_update())
        if notification is None:
            due = members[0].due_at
            assert due is not None
            notification = models.Notification(organisation_id=organisation_id, channel_id=channel_id, kind="alert",
                                               group_key=group_key, alert_ids=[], next_attempt_at=due,
                                               created_at=ctx.now, breach_observed_at=min(observed, default=None))
            session.add(notification)
            report.notifications_created += 1
        else:
            report.notifications_joined += 1
            if observed and (notification.breach_observed_at is None
                             or min(observed) < notification.breach_observed_at):
                notification.breach_observed_at = min(observed)
        ids = list(notification.alert_ids or [])
        ids += [a.id for a in members if a.id not in ids]
        notification.alert_ids = ids
        notification.kind, notification.payload = group_payload(session, organisation_id, group_key, ids,
                                                                 notification.next_attempt_at)
        for alert in members:
            record_sent(session, alert.organisation_id, group_key, alert.fingerprint, alert.state, ctx.now)


def record_sent(session: Session, organisation_id: str, group_key: str, fingerprint: str, state: str,
                now: datetime) -> None:
    """Remember in the notification log that this state of the alert is on its way to the group."""
    entry = session.get(models.NotificationLogEntry, (organisation_id, group_key, fingerprint))
    if entry is None:
        session.add(models.NotificationLogEntry(organisation_id=organisation_id, group_key=group_key,
                                                fingerprint=fingerprint, last_status=state, last_sent_at=now))
    else:
        entry.last_status, entry.last_sent_at = state, now


def _clearances(session: Session, organisation_ids: Iterable[str]) -> dict[str, Classification]:
    ids = sorted(set(organisation_ids))
    if not ids:
        return {}
    return {o.id: Classification(o.clearance)
            for o in session.scalars(select(models.Organisation).where(models.Organisation.id.in_(ids)))}


def _count(decisions: list[Decision]) -> None:
    for d in decisions:
        DECISIONS.labels(d.stage, d.decision).inc()
        log.info("pipeline decision", extra={"stage": d.stage, "decision": d.decision, "reason": d.reason,
                                             "organisation_id": d.organisation_id, "fingerprint": d.fingerprint})


def dispatch_breaches(session: Session, index: SubscriptionIndex, breaches: list[BreachRaised], now: datetime,
                      timing: Timing) -> DispatchReport:
    """Turn breaches into alert rows and outbox notifications in the session's transaction (the caller commits)."""
    report = DispatchReport()
    candidates = [a for b in breaches for a in alerts_for_breach(index, b)]
    candidates += orphaned_resolutions(session, breaches, {(a.organisation_id, a.fingerprint) for a in candidates})
    ctx = PipelineContext(now=now, timing=timing,
                          clearance=_clearances(session, (a.organisation_id for a in candidates)))
    passed = classification_gate(ctx, candidates)
    upserted = []
    for alert in passed:
        row = upsert_alert(session, ctx, alert)
        if row is not None:
            upserted.append(row)
    report.alerts_upserted = len(upserted)
    _count(ctx.decisions)
    gate_decisions = list(ctx.decisions)
    load_context(session, ctx, (a.organisation_id for a in upserted), upserted)
    ctx.decisions = []
    due = run_pipeline(ctx, upserted, AFTER_UPSERT)
    enqueue(session, ctx, due, report)
    report.decisions = gate_decisions + ctx.decisions
    return report


def sweep_firing(session: Session, index: SubscriptionIndex, now: datetime, timing: Timing) -> DispatchReport:
    """Re-run the pipeline over every firing alert: repeats fall due, expired silences and lifted inhibitions show."""
    report = DispatchReport()
    rows = list(session.scalars(select(models.Alert).where(models.Alert.status == "firing")))
    if not rows:
        return report
    ctx = PipelineContext(now=now, timing=timing, clearance=_clearances(session, (r.organisation_id for r in rows)))
    alerts = []
    for row in rows:
        match = index.lookup(row.material, Severity(row.severity)).get(row.organisation_id)
        if match is not None:
            alerts.append(_from_row(row, channel_ids=tuple(match.channel_ids), changed=False))
    # Clearance may have been lowered since the alert was created.
    alerts = classification_gate(ctx, alerts)
    load_context(session, ctx, (a.organisation_id for a in alerts), alerts)
    due = run_pipeline(ctx, alerts, AFTER_UPSERT)
    enqueue(session, ctx, due, report)
    report.decisions = ctx.decisions
    return report


__all__ = ["DispatchReport", "alerts_for_breach", "dispatch_breaches", "sweep_firing"]
