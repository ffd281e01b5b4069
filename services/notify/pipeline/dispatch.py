"""The one alert pipeline: breaches in, alert rows, notification-log entries and outbox rows out.

`PIPELINE` is the list of stages every breach goes through, run by `run_pipeline` as Alertmanager's MultiStage
runs its stages: classification gate -> upsert the organisation's alert -> load what the next stages read ->
inhibit -> silence -> route -> de-duplicate -> group -> enqueue. The stages that read or write state do it
through the context's `AlertStore` (store/alert_state.py), so the whole path runs on a fake store in tests.
The caller commits the store's transaction, and only then the Kafka offset.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from services.notify.delivery.payload import alert_payload, group_payload
from services.notify.matching import SubscriptionIndex
from services.notify.pipeline.alert import (
    Alert,
    Decision,
    LogEntry,
    NotificationDraft,
    PipelineContext,
    Timing,
)
from services.notify.pipeline.inhibition import DEFAULT_INHIBIT_RULES, InhibitRule
from services.notify.pipeline.stages import (
    Stage,
    classification_gate,
    deduplicate,
    group,
    inhibit,
    route,
    run_pipeline,
    silence,
)
from services.notify.store import open_breaches
from services.notify.store.alert_state import AlertStore, SqlAlertStore
from services.notify.store.models import new_id
from shared.events import BreachRaised, BreachStatus, Classification, Severity


@dataclass
class DispatchReport:
    """What one batch came to: alerts written, notifications created or joined, and every decision."""

    alerts_upserted: int = 0
    notifications_created: int = 0
    notifications_joined: int = 0
    decisions: list[Decision] = field(default_factory=list)

    def add(self, ctx: PipelineContext) -> None:
        self.alerts_upserted += sum(
            1 for d in ctx.decisions if d.stage == "upsert" and d.decision in ("created", "changed", "unchanged")
        )
        self.notifications_created += ctx.notifications_created
        self.notifications_joined += ctx.notifications_joined
        self.decisions += ctx.decisions


def breach_classification(breach: BreachRaised) -> Classification:
    """The most restricted of the breach and its evidence: an alert is as sensitive as its most sensitive input."""
    return Classification.most_restricted([breach.classification, *(e.classification for e in breach.evidence)])


def matching_severity(breach: BreachRaised) -> Severity:
    # A resolution goes to every channel that may have heard the firing; de-duplication drops the rest.
    return Severity.CRITICAL if breach.status == BreachStatus.RESOLVED else breach.severity


def alerts_for_breach(
    index: SubscriptionIndex, breach: BreachRaised, organisations: Collection[str] | None = None
) -> list[Alert]:
    """One candidate alert per organisation the breach concerns (of those given), with why (via) and where."""
    data = breach.model_dump(mode="json")
    classification = breach_classification(breach)
    return [
        Alert(
            organisation_id=org,
            fingerprint=breach.fingerprint,
            material=breach.material,
            rule=breach.rule,
            severity=breach.severity,
            status=breach.status,
            classification=classification,
            starts_at=breach.starts_at,
            ends_at=breach.ends_at,
            observed_at=breach.observed_at,
            summary=breach.summary,
            breach=data,
            via=tuple(match.via),
            channel_ids=tuple(match.channel_ids),
        )
        for org, match in sorted(index.lookup(breach.material, matching_severity(breach)).items())
        if organisations is None or org in organisations
    ]


def orphaned_resolutions(store: AlertStore, breaches: list[BreachRaised], matched: set[tuple[str, str]]) -> list[Alert]:
    """Resolutions for organisations whose firing alert no subscription covers any more: the row must still close."""
    resolved = {b.fingerprint: b for b in breaches if b.status == BreachStatus.RESOLVED}
    if not resolved:
        return []
    out = []
    for firing in store.firing_alerts(resolved):
        if (firing.organisation_id, firing.fingerprint) in matched:
            continue
        b = resolved[firing.fingerprint]
        out.append(
            Alert(
                organisation_id=firing.organisation_id,
                fingerprint=b.fingerprint,
                material=b.material,
                rule=b.rule,
                severity=b.severity,
                status=b.status,
                classification=breach_classification(b),
                starts_at=b.starts_at,
                ends_at=b.ends_at,
                observed_at=b.observed_at,
                summary=b.summary,
                breach=b.model_dump(mode="json"),
                via=firing.via,
            )
        )
    return out


def organisations_of(index: SubscriptionIndex, breach: BreachRaised) -> list[str]:
    """The organisations a breach makes an alert for."""
    return sorted(index.lookup(breach.material, matching_severity(breach)))


@dataclass(frozen=True)
class DispatchUnit:
    """One dispatch transaction: breaches, for these organisations (every one matched when None).

    `orphans`: this unit also closes the firing alerts of organisations no subscription covers any more
    (exactly one unit of a batch does).
    """

    breaches: list[BreachRaised]
    organisations: frozenset[str] | None = None
    orphans: bool = True

    def overlaps(self, other: DispatchUnit) -> bool:
        """Whether the two may touch the rows of one organisation (then they must run one after the other)."""
        if self.organisations is None or other.organisations is None or self.orphans or other.orphans:
            return True
        return not self.organisations.isdisjoint(other.organisations)


def units_by_pairs(index: SubscriptionIndex, breaches: list[BreachRaised], max_pairs: int) -> list[DispatchUnit]:
    """Split a batch into transactions of at most `max_pairs` alerts each, by organisation.

    Each organisation's alerts of the whole batch go in one transaction where they fit, so it gets one
    notification, not one per transaction, and transactions of different organisations never touch the same
    rows. An organisation with more alerts than that gets consecutive transactions of its own, in order.
    """
    per_org: dict[str, list[BreachRaised]] = defaultdict(list)
    for breach in breaches:
        for org in organisations_of(index, breach):
            per_org[org].append(breach)
    if sum(len(b) for b in per_org.values()) <= max_pairs:
        return [DispatchUnit(breaches)]
    units: list[DispatchUnit] = []
    packed: list[str] = []
    size = 0

    def close(orgs: list[str]) -> None:
        wanted = set(orgs)
        mine = [b for b in breaches if not wanted.isdisjoint(organisations_of(index, b))]
        units.append(DispatchUnit(mine, frozenset(orgs), orphans=False))

    for org in sorted(per_org):
        own = per_org[org]
        if len(own) > max_pairs:
            for start in range(0, len(own), max_pairs):
                units.append(DispatchUnit(own[start : start + max_pairs], frozenset({org}), orphans=False))
            continue
        if packed and size + len(own) > max_pairs:
            close(packed)
            packed, size = [], 0
        packed.append(org)
        size += len(own)
    if packed:
        close(packed)
    resolutions = [b for b in breaches if b.status == BreachStatus.RESOLVED]
    if resolutions:
        first = units[0]
        # Resolutions the first unit does not carry still close the alerts of organisations no one matches.
        carried = {id(b) for b in first.breaches}
        extra = [b for b in breaches if id(b) in carried or b.status == BreachStatus.RESOLVED]
        units[0] = DispatchUnit(extra, first.organisations, orphans=True)
    return units


def transitions(breaches: list[BreachRaised]) -> list[list[BreachRaised]]:
    """The breaches in rounds that hold each fingerprint at most once, in arrival order.

    A backlog may hold a firing, its resolution and a new firing of one fingerprint: each round sees the
    state the previous one left, so each transition is de-duplicated, logged and sent on its own.
    """
    rounds: list[list[BreachRaised]] = []
    seen: Counter[str] = Counter()
    for breach in breaches:
        n = seen[breach.fingerprint]
        seen[breach.fingerprint] += 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(breach)
    return rounds


def _store(ctx: PipelineContext) -> AlertStore:
    assert ctx.store is not None, "the stages that keep state need the context's store"
    return ctx.store


def upsert(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Create or update each organisation's alert row; pass on the alert as stored, with its id."""
    store = _store(ctx)
    stored = store.alerts((a.organisation_id, a.fingerprint) for a in alerts)
    out: list[Alert] = []
    cleared: list[str] = []
    for alert in alerts:
        key = (alert.organisation_id, alert.fingerprint)
        before = stored.get(key)
        if before is None:
            if not alert.firing:
                ctx.decide("upsert", "drop", "resolution of an alert this organisation never had", alert)
                continue
            now_stored = alert.evolve(id=new_id(), updated_at=ctx.now, ends_at=None, changed=True)
            ctx.decide("upsert", "created", f"new {alert.state} alert", alert)
        else:
            if alert.observed_at and before.observed_at and alert.observed_at < before.observed_at:
                ctx.decide("upsert", "stale", f"observed {alert.observed_at.isoformat()}, older than the alert", alert)
                continue
            changed = before.state != alert.state
            acknowledged_at = before.acknowledged_at
            if changed and alert.firing and acknowledged_at is not None:
                acknowledged_at = None  # new information deserves a new look
                cleared.append(str(before.id))
            reopened = changed and alert.firing and not before.firing
            via = sorted(set(before.via) | set(alert.via)) if alert.firing and not changed else list(alert.via)
            now_stored = alert.evolve(
                id=before.id,
                starts_at=alert.starts_at if reopened else before.starts_at,
                ends_at=None if alert.firing else alert.ends_at,
                via=tuple(via),
                acknowledged_at=acknowledged_at,
                updated_at=ctx.now,
                changed=changed,
            )
            ctx.decide("upsert", "changed" if changed else "unchanged", f"{before.state} -> {alert.state}", alert)
        stored[key] = now_stored
        out.append(now_stored)
    store.save_alerts(out, cleared)
    return out


def load_state(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Read what the next stages need: firing criticals, silences, channels, the notification log, the groups."""
    _store(ctx).load_context(ctx, (a.organisation_id for a in alerts), (a.fingerprint for a in alerts))
    return alerts


def enqueue(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Write each notification the group stage chose: a new outbox row, or more alerts in an open one.

    The payload keeps each alert as it was when it joined, and the notification log records exactly that
    state: what the receiver will be told, never a state the payload does not carry.
    """
    store = _store(ctx)
    members: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        assert alert.notification_id is not None, "group before enqueue"
        assert alert.id, "upsert before enqueue"
        members[alert.notification_id].append(alert)
    drafts = []
    sent: dict[tuple[str, str, str], LogEntry] = {}
    for notification_id, joining in members.items():
        first = joining[0]
        assert first.channel_id is not None, "route before enqueue"
        assert first.group_key is not None, "route before enqueue"
        assert first.due_at is not None, "group before enqueue"
        open_one = ctx.notifications.get(notification_id)
        carried = {a.get("id"): a for a in open_one.payload.get("alerts", [])} if open_one else {}
        alert_ids = list(open_one.alert_ids) if open_one else []
        for alert in joining:
            carried[alert.id] = alert_payload(alert)
            if alert.id not in alert_ids:
                alert_ids.append(str(alert.id))
            sent[(alert.organisation_id, first.group_key, alert.fingerprint)] = LogEntry(alert.state, ctx.now)
        # Timed from the breach reaching the notifier (this dispatch), on the clock the send is timed by: its
        # event time may be weeks old (a late or replayed input), and the scorer's clock is another host's.
        observed = [ctx.now] if any(a.changed for a in joining) else []
        if open_one and open_one.breach_observed_at:
            observed.append(open_one.breach_observed_at)
        kind, payload = group_payload(first.organisation_id, first.group_key, list(carried.values()), first.due_at)
        drafts.append(
            NotificationDraft(
                id=notification_id,
                organisation_id=first.organisation_id,
                channel_id=first.channel_id,
                group_key=first.group_key,
                kind=kind,
                alert_ids=tuple(alert_ids),
                payload=payload,
                next_attempt_at=first.due_at,
                breach_observed_at=min(observed, default=None),
                new=open_one is None,
            )
        )
    store.write_notifications(drafts, ctx.now)
    store.record_sent(sent)
    ctx.notifications_created += sum(1 for d in drafts if d.new)
    ctx.notifications_joined += sum(1 for d in drafts if not d.new)
    return alerts


PIPELINE: tuple[Stage, ...] = (
    classification_gate,
    upsert,
    load_state,
    inhibit,
    silence,
    route,
    deduplicate,
    group,
    enqueue,
)
# The sweep re-runs stored alerts through the same stages; there is nothing new to store.
SWEEP: tuple[Stage, ...] = tuple(stage for stage in PIPELINE if stage is not upsert)


def dispatch(
    store: AlertStore,
    index: SubscriptionIndex,
    breaches: list[BreachRaised],
    now: datetime,
    timing: Timing,
    organisations: Collection[str] | None = None,
    orphans: bool = True,
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> DispatchReport:
    """Run breaches through the pipeline, one round per transition of a fingerprint, on the store given.

    Only the alerts of `organisations` (every one matched when None); `orphans` closes the alerts of
    organisations no subscription covers any more.
    """
    report = DispatchReport()
    for breaches_once in transitions(breaches):
        candidates = [a for b in breaches_once for a in alerts_for_breach(index, b, organisations)]
        if orphans:
            matched = {(org, b.fingerprint) for b in breaches_once for org in organisations_of(index, b)}
            candidates += orphaned_resolutions(store, breaches_once, matched)
        ctx = PipelineContext(
            now=now,
            timing=timing,
            store=store,
            inhibit_rules=tuple(inhibit_rules),
            clearance=store.clearances(a.organisation_id for a in candidates),
        )
        run_pipeline(ctx, candidates, PIPELINE)
        report.add(ctx)
    return report


def dispatch_breaches(
    session: Session,
    index: SubscriptionIndex,
    breaches: list[BreachRaised],
    now: datetime,
    timing: Timing,
    unit: DispatchUnit | None = None,
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> DispatchReport:
    """Turn breaches into alert rows and outbox notifications in the session's transaction (the caller commits);
    only those of the unit's organisations when a unit is given."""
    if unit is None:
        return dispatch(SqlAlertStore(session), index, breaches, now, timing, inhibit_rules=inhibit_rules)
    return dispatch(
        SqlAlertStore(session), index, breaches, now, timing, unit.organisations, unit.orphans, inhibit_rules
    )


def sweep(
    store: AlertStore,
    index: SubscriptionIndex,
    now: datetime,
    timing: Timing,
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> DispatchReport:
    """Re-run every firing alert through the pipeline: repeats fall due, expired silences and lifted inhibitions."""
    report = DispatchReport()
    alerts = []
    for stored in store.firing_alerts():
        match = index.lookup(stored.material, stored.severity).get(stored.organisation_id)
        if match is not None:
            alerts.append(stored.evolve(channel_ids=tuple(match.channel_ids), changed=False))
    if not alerts:
        return report
    # Clearance may have been lowered since the alert was created: the gate runs again.
    ctx = PipelineContext(
        now=now,
        timing=timing,
        store=store,
        inhibit_rules=tuple(inhibit_rules),
        clearance=store.clearances(a.organisation_id for a in alerts),
    )
    run_pipeline(ctx, alerts, SWEEP)
    report.add(ctx)
    return report


def sweep_firing(
    session: Session,
    index: SubscriptionIndex,
    now: datetime,
    timing: Timing,
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> DispatchReport:
    """`sweep` in the session's transaction (the caller commits)."""
    return sweep(SqlAlertStore(session), index, now, timing, inhibit_rules)


def catch_up(
    session: Session,
    index: SubscriptionIndex,
    now: datetime,
    timing: Timing,
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> DispatchReport:
    """Tell organisations that subscribed after a breach opened: an alert marked `open_since`, once.

    Only organisations with no alert of the fingerprint yet; once created, the alert row and the notification
    log keep it from being sent again (restarts, replays, a subscription re-created). A channel added to an
    organisation that has the alert is told by the sweep, which the de-duplication stage marks the same way.
    """
    report = DispatchReport()
    breaches = open_breaches.open_breaches(session)
    alerted = open_breaches.organisations_alerted(session, (b.fingerprint for b in breaches))
    candidates = []
    for breach in breaches:
        newcomers = {org for org in organisations_of(index, breach) if (org, breach.fingerprint) not in alerted}
        candidates += [a.evolve(open_since=breach.starts_at) for a in alerts_for_breach(index, breach, newcomers)]
    if not candidates:
        return report
    store = SqlAlertStore(session)
    ctx = PipelineContext(
        now=now,
        timing=timing,
        store=store,
        inhibit_rules=tuple(inhibit_rules),
        clearance=store.clearances(a.organisation_id for a in candidates),
    )
    run_pipeline(ctx, candidates, PIPELINE)
    report.add(ctx)
    return report


__all__ = [
    "PIPELINE",
    "SWEEP",
    "DispatchReport",
    "DispatchUnit",
    "alerts_for_breach",
    "catch_up",
    "dispatch",
    "dispatch_breaches",
    "sweep",
    "sweep_firing",
    "units_by_pairs",
]
