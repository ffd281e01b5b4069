"""The pipeline stages. Each takes the context and alerts, records a decision per alert, and returns what goes on.

Order (as in Alertmanager's notification path): classification gate, inhibit, silence, route (one copy per
channel), de-duplicate against the notification log, group (when the notification is due).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from prometheus_client import Counter, Histogram

from services.notify.pipeline.alert import SEVERITY_RANK, Alert, GroupState, OpenSlot, PipelineContext
from services.notify.pipeline.inhibition import index_sources, inhibitor
from shared.events import Severity

log = logging.getLogger(__name__)

Stage = Callable[[PipelineContext, list[Alert]], list[Alert]]

# Decisions that keep an alert from a notification.
HOLDING = frozenset({"drop", "inhibited", "silenced", "stale"})

DECISIONS = Counter(
    "mews_notify_pipeline_decisions_total", "Decisions of the alert pipeline, by stage", ["stage", "decision"]
)
STAGE_SECONDS = Histogram(
    "mews_notify_pipeline_stage_seconds",
    "Time of one stage over one batch of alerts",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def classification_gate(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Drop every alert classified above its organisation's clearance: it must never reach them."""
    kept = []
    for alert in alerts:
        clearance = ctx.clearance.get(alert.organisation_id)
        if clearance is None:
            ctx.decide("classification", "drop", "organisation unknown", alert)
        elif not clearance.allows(alert.classification):
            ctx.decide(
                "classification",
                "drop",
                f"classified {alert.classification.value}, above clearance {clearance.value}",
                alert,
            )
        else:
            ctx.decide(
                "classification",
                "pass",
                f"classified {alert.classification.value}, within clearance {clearance.value}",
                alert,
            )
            kept.append(alert)
    return kept


def inhibit(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Mute the firing alerts an inhibit rule's firing source alert (same organisation and material) covers."""
    if not ctx.inhibit_rules:
        return alerts
    # The batch's alerts are stored already; the batch's own states win over what was loaded.
    current = {(a.organisation_id, a.fingerprint): a for a in ctx.firing}
    current.update({(a.organisation_id, a.fingerprint): a for a in alerts})
    # An alert the organisation may no longer see (its clearance was lowered) inhibits nothing.
    sources = index_sources(
        a
        for a in current.values()
        if a.organisation_id in ctx.clearance and ctx.clearance[a.organisation_id].allows(a.classification)
    )
    kept = []
    for alert in alerts:
        found = inhibitor(alert, sources, ctx.inhibit_rules)
        if found is not None:
            source, rule = found
            ctx.decide(
                "inhibit",
                "inhibited",
                f"inhibited by {source.severity.value} alert {source.id} "
                f"({source.rule}) for {alert.material}: {rule.describe()}",
                alert,
            )
        else:
            kept.append(alert)
    return kept


def silence(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Mute firing alerts that an active silence of their organisation matches."""
    kept = []
    for alert in alerts:
        match = next((s for s in ctx.silences if alert.firing and s.active(ctx.now) and s.matches(alert)), None)
        if match is not None:
            ctx.decide("silence", "silenced", f"silence {match.id} until {match.ends_at.isoformat()}", alert)
        else:
            kept.append(alert)
    return kept


DIGESTS = ("digest:", "weekly:")  # groups that wait for a digest time, not for the group timers


def group_key_for(
    alert: Alert, channel_mode: str, channel_id: str, quiet: bool = False, digest_every: str = "day"
) -> str:
    """Warnings to a digest channel wait for its daily or weekly digest, and warnings to a channel with quiet hours
    go in a group of their own (it waits out the quiet hours); criticals are always immediate."""
    if alert.severity == Severity.CRITICAL:
        return f"immediate:{channel_id}"
    if channel_mode == "digest":
        return f"weekly:{channel_id}" if digest_every == "week" else f"digest:{channel_id}"
    return f"quiet:{channel_id}" if quiet else f"immediate:{channel_id}"


def route(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """One copy of each alert per enabled channel its subscriptions name, with the group it belongs to."""
    routed = []
    for alert in alerts:
        for channel_id in alert.channel_ids:
            channel = ctx.channels.get(channel_id)
            if channel is None or channel.organisation_id != alert.organisation_id:
                ctx.decide("route", "drop", "channel unknown to the organisation", alert, channel_id=channel_id)
            elif not channel.enabled:
                ctx.decide("route", "drop", "channel disabled", alert, channel_id=channel_id)
            elif alert.firing and SEVERITY_RANK[alert.severity] < SEVERITY_RANK[channel.min_severity]:
                # A resolution passes: de-duplication drops it unless this channel heard the firing.
                ctx.decide(
                    "route",
                    "drop",
                    f"{alert.severity.value}, below the channel's minimum {channel.min_severity.value}",
                    alert,
                    channel_id=channel_id,
                )
            else:
                key = group_key_for(
                    alert, channel.mode, channel_id, quiet=channel.quiet is not None, digest_every=channel.digest_every
                )
                copy = alert.evolve(channel_id=channel_id, group_key=key)
                ctx.decide("route", "routed", f"to group {key}", copy)
                routed.append(copy)
        if not alert.channel_ids:
            ctx.decide("route", "drop", "no channel subscribed", alert)
    return routed


def deduplicate(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Pass only what the group has not been told: new or changed state, a due repeat, or a resolution."""
    kept = []
    for alert in alerts:
        assert alert.group_key is not None, "route before deduplicate"
        entry = ctx.log.get((alert.organisation_id, alert.group_key, alert.fingerprint))
        if not alert.firing:
            if entry is None or not entry.last_status.startswith("firing"):
                ctx.decide("dedup", "drop", "resolved, but its firing was never notified here", alert)
                continue
            ctx.decide("dedup", "send", "resolved since notified firing", alert)
        elif entry is None and not alert.changed:
            # Firing before this group heard of it (a channel added, a silence ended): say since when.
            alert = alert.evolve(open_since=alert.open_since or alert.starts_at)
            ctx.decide("dedup", "send", "open alert new to this group", alert)
        elif entry is None:
            ctx.decide("dedup", "send", "new alert", alert)
        elif entry.last_status != alert.state:
            ctx.decide("dedup", "send", f"changed from {entry.last_status} to {alert.state}", alert)
        elif alert.acknowledged_at is not None:
            ctx.decide("dedup", "drop", f"unchanged and acknowledged at {alert.acknowledged_at.isoformat()}", alert)
            continue
        elif ctx.now >= entry.last_sent_at + ctx.timing.repeat_interval:
            ctx.decide("dedup", "send", f"repeat: unchanged since {entry.last_sent_at.isoformat()}", alert)
        else:
            ctx.decide(
                "dedup",
                "drop",
                f"unchanged; repeat due {(entry.last_sent_at + ctx.timing.repeat_interval).isoformat()}",
                alert,
            )
            continue
        kept.append(alert)
    return kept


def next_tick(last_flush: datetime, interval: timedelta, now: datetime) -> datetime:
    """The first group-interval tick after the last flush that is not in the past.

    Like Alertmanager's aggregation-group timer, updates go out on ticks of the interval, so changes that
    arrive close together (several resolutions) share one notification.
    """
    if interval <= timedelta(0) or now <= last_flush + interval:
        return max(now, last_flush + interval)
    ticks = math.ceil((now - last_flush) / interval)
    return last_flush + ticks * interval


def channel_zone(ctx: PipelineContext, alert: Alert) -> tzinfo:
    channel = ctx.channels.get(alert.channel_id or "")
    return channel.zone if channel else UTC


def after_quiet(ctx: PipelineContext, alert: Alert, due: datetime) -> datetime:
    """When a notification due then may go: after the channel's quiet hours, unless it carries a critical."""
    channel = ctx.channels.get(alert.channel_id or "")
    if channel is None or channel.quiet is None or alert.group_key is None or not alert.group_key.startswith("quiet:"):
        return due
    return channel.quiet.release(due, channel.zone)


def group(ctx: PipelineContext, alerts: list[Alert]) -> list[Alert]:
    """Decide which notification each alert goes in and when it is due: group wait, interval, or the daily digest.

    A notification never carries two states of one alert: when an open one already carries another state
    (a firing, then its resolution, in one backlog), this alert goes in a later one, an interval on, so the
    receiver hears every transition, in order.
    """
    timed = []
    touched: dict[str, list[OpenSlot]] = {}  # slots of the groups seen here, with members this stage may change
    for alert in alerts:
        key = alert.group_key
        assert key is not None, "route before group"
        state = ctx.groups.get(key, GroupState())
        if key not in touched:
            touched[key] = [dataclasses.replace(slot, members=dict(slot.members)) for slot in state.open]
        slots = touched[key]
        carrying = [i for i, slot in enumerate(slots) if alert.fingerprint in slot.members]
        last = carrying[-1] if carrying else None
        if last is not None and slots[last].members[alert.fingerprint] == alert.state:
            target = last
        elif last is None and slots:
            target = 0
        elif last is not None and last + 1 < len(slots):
            target = last + 1
        else:
            target = len(slots)
        if target < len(slots):
            due, decision, reason = slots[target].due_at, "joined", f"joins the notification due {slots[target].due_at}"
        else:
            if last is not None:
                carried = slots[last]
                due = (
                    carried.due_at
                    if key.startswith(DIGESTS)
                    else after_quiet(ctx, alert, next_tick(carried.due_at, ctx.timing.group_interval, ctx.now))
                )
                decision = "next"
                reason = (
                    f"the notification due {carried.due_at} carries it "
                    f"{carried.members[alert.fingerprint]}: the next one is due {due}"
                )
            elif key.startswith("digest:"):
                due = ctx.timing.next_digest(ctx.now, channel_zone(ctx, alert))
                decision, reason = "digest", f"waits for the daily digest at {due.isoformat()}"
            elif key.startswith("weekly:"):
                due = ctx.timing.next_weekly_digest(ctx.now, channel_zone(ctx, alert))
                decision, reason = "digest", f"waits for the weekly digest at {due.isoformat()}"
            elif state.last_flush_at is None:
                due = after_quiet(ctx, alert, ctx.now + ctx.timing.group_wait)
                decision, reason = "new_group", f"new group: group wait until {due.isoformat()}"
            else:
                due = after_quiet(ctx, alert, next_tick(state.last_flush_at, ctx.timing.group_interval, ctx.now))
                decision, reason = "update", f"group update: next interval tick {due.isoformat()}"
            slots.append(OpenSlot(str(uuid.uuid4()), due, {}))
        slot = slots[target]
        slot.members[alert.fingerprint] = alert.state  # type: ignore[index]
        ctx.groups[key] = GroupState(last_flush_at=state.last_flush_at, open=tuple(slots))
        ctx.decide("group", decision, reason, alert)
        timed.append(alert.evolve(due_at=due, notification_id=slot.id))
    return timed


def run_pipeline(ctx: PipelineContext, alerts: list[Alert], stages: Sequence[Stage]) -> list[Alert]:
    """Run the stages in order (Alertmanager's MultiStage); count every decision taken on the way, and log it."""
    start = len(ctx.decisions)
    for stage in stages:
        started = time.perf_counter()
        alerts = stage(ctx, alerts)
        STAGE_SECONDS.labels(getattr(stage, "__name__", "stage")).observe(time.perf_counter() - started)
        if not alerts:
            break
    taken = ctx.decisions[start:]
    for (stage_name, decision), count in collections.Counter((d.stage, d.decision) for d in taken).items():
        DECISIONS.labels(stage_name, decision).inc(count)
    debug = log.isEnabledFor(logging.DEBUG)
    for d in taken:
        # What held an alert back is what a person asks about; what passed is only worth a line when debugging.
        if debug or d.decision in HOLDING:
            log.log(
                logging.INFO if d.decision in HOLDING else logging.DEBUG,
                "pipeline decision",
                extra={
                    "stage": d.stage,
                    "decision": d.decision,
                    "reason": d.reason,
                    "organisation_id": d.organisation_id,
                    "fingerprint": d.fingerprint,
                    "channel_id": d.channel_id,
                },
            )
    return alerts
