"""The whole pipeline (`PIPELINE`) on a fake store: breaches in, alerts, notification log and outbox rows out."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from services.notify.matching import SubscriptionIndex, SubscriptionSpec
from services.notify.pipeline.alert import (
    Alert,
    ChannelRoute,
    GroupState,
    LogEntry,
    NotificationDraft,
    OpenNotification,
    OpenSlot,
    PipelineContext,
    Silence,
    Timing,
)
from services.notify.pipeline.dispatch import PIPELINE, dispatch, sweep, transitions, units_by_pairs
from services.notify.store.alert_state import AlertStore, state_in_payload
from shared.events import BreachRaised, BreachStatus, Classification, Severity

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TIMING = Timing(
    group_wait=timedelta(seconds=30), group_interval=timedelta(minutes=5), repeat_interval=timedelta(hours=4)
)


class FakeAlertStore(AlertStore):
    """The alert state in dictionaries; notifications stay open until `deliver_all` marks them sent."""

    def __init__(self, clearances: dict[str, Classification], channels: list[ChannelRoute]) -> None:
        self.clearance = clearances
        self.channels = {c.id: c for c in channels}
        self.silences: list[Silence] = []
        self.rows: dict[tuple[str, str], Alert] = {}
        self.log: dict[tuple[str, str, str], LogEntry] = {}
        self.outbox: dict[str, NotificationDraft] = {}
        self.delivered: set[str] = set()

    def clearances(self, organisation_ids: Iterable[str]) -> dict[str, Classification]:
        return {o: self.clearance[o] for o in organisation_ids if o in self.clearance}

    def firing_alerts(self, fingerprints: Iterable[str] | None = None) -> list[Alert]:
        wanted = None if fingerprints is None else set(fingerprints)
        return [a for a in self.rows.values() if a.firing and (wanted is None or a.fingerprint in wanted)]

    def alerts(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Alert]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    def save_alerts(self, alerts: list[Alert], acknowledgement_cleared: Iterable[str] = ()) -> None:
        for a in alerts:
            self.rows[(a.organisation_id, a.fingerprint)] = dataclasses.replace(a, channel_ids=(), changed=False)

    def load_context(self, ctx: PipelineContext, organisation_ids: Iterable[str], fingerprints: Iterable[str]) -> None:
        orgs, fps = set(organisation_ids), set(fingerprints)
        ctx.firing = [
            a for a in self.rows.values() if a.organisation_id in orgs and a.firing and a.severity == Severity.CRITICAL
        ]
        ctx.silences = [s for s in self.silences if s.organisation_id in orgs]
        ctx.channels = {i: c for i, c in self.channels.items() if c.organisation_id in orgs}
        ctx.log = {k: e for k, e in self.log.items() if k[0] in orgs and k[2] in fps}
        ctx.notifications, ctx.groups = {}, {}
        for n in sorted(self.outbox.values(), key=lambda n: n.next_attempt_at):
            if n.channel_id not in ctx.channels:
                continue
            state = ctx.groups.get(n.group_key, GroupState())
            if n.id in self.delivered:
                ctx.groups[n.group_key] = dataclasses.replace(state, last_flush_at=n.next_attempt_at)
            else:
                ctx.notifications[n.id] = OpenNotification(n.id, n.next_attempt_at, n.alert_ids, n.payload)
                members = {a["fingerprint"]: state_in_payload(a) for a in n.payload["alerts"]}
                ctx.groups[n.group_key] = dataclasses.replace(
                    state, open=(*state.open, OpenSlot(n.id, n.next_attempt_at, members))
                )

    def write_notifications(self, drafts: list[NotificationDraft], now: datetime) -> None:
        for d in drafts:
            assert d.new == (d.id not in self.outbox)
            self.outbox[d.id] = d

    def record_sent(self, entries: Mapping[tuple[str, str, str], LogEntry]) -> None:
        self.log.update(entries)

    def deliver_all(self) -> list[NotificationDraft]:
        """Everything not yet sent, in the order it falls due; then it counts as sent."""
        due = sorted((n for n in self.outbox.values() if n.id not in self.delivered), key=lambda n: n.next_attempt_at)
        self.delivered |= {n.id for n in due}
        return due


def index_of(*orgs: str) -> SubscriptionIndex:
    return SubscriptionIndex(
        [SubscriptionSpec(f"sub-{o}", o, Severity.WARNING, (f"hook-{o}",), material="gallium") for o in orgs]
    )


def breach(
    fp: str,
    status: BreachStatus = BreachStatus.FIRING,
    minutes: int = 0,
    severity: Severity = Severity.WARNING,
    classification: Classification = Classification.PUBLIC,
) -> BreachRaised:
    observed = NOW - timedelta(hours=1) + timedelta(minutes=minutes)
    return BreachRaised(
        fingerprint=fp,
        material="gallium",
        rule="price_spike",
        indicator="price_volatility",
        severity=severity,
        status=status,
        value=0.5,
        threshold=0.3,
        starts_at=NOW - timedelta(hours=2) + timedelta(minutes=minutes),
        ends_at=observed if status == BreachStatus.RESOLVED else None,
        observed_at=observed,
        summary="s",
        classification=classification,
    )


def store_for(*orgs: str, clearance: Classification = Classification.PUBLIC) -> FakeAlertStore:
    return FakeAlertStore(dict.fromkeys(orgs, clearance), [ChannelRoute(f"hook-{o}", o) for o in orgs])


def test_one_breach_goes_through_every_stage_of_the_pipeline_to_one_notification_per_organisation():
    store = store_for("org-a", "org-b")
    store.clearance["org-b"] = Classification.PUBLIC
    report = dispatch(
        store,
        index_of("org-a", "org-b", "org-c"),
        [breach("fp1"), breach("fp2", classification=Classification.RESTRICTED)],
        NOW,
        TIMING,
    )

    assert sorted(store.rows) == [("org-a", "fp1"), ("org-b", "fp1")]
    [a, b] = sorted(store.outbox.values(), key=lambda n: n.organisation_id)
    assert (a.channel_id, a.group_key, a.kind, a.new) == ("hook-org-a", "immediate:hook-org-a", "alert", True)
    assert a.next_attempt_at == NOW + timedelta(seconds=30)  # group wait
    assert [x["fingerprint"] for x in a.payload["alerts"]] == ["fp1"]
    assert a.alert_ids == (store.rows[("org-a", "fp1")].id,)
    assert store.log[("org-a", "immediate:hook-org-a", "fp1")] == LogEntry("firing:warning", NOW)
    assert report.alerts_upserted == 2
    assert report.notifications_created == 2
    # org-c has no clearance on record; fp2 is above everybody's clearance.
    drops = sorted((d.organisation_id, d.fingerprint, d.reason) for d in report.decisions if d.decision == "drop")
    assert drops == [
        ("org-a", "fp2", "classified restricted, above clearance public"),
        ("org-b", "fp2", "classified restricted, above clearance public"),
        ("org-c", "fp1", "organisation unknown"),
        ("org-c", "fp2", "organisation unknown"),
    ]
    stages = [d.stage for d in report.decisions if d.organisation_id == "org-a" and d.fingerprint == "fp1"]
    assert stages == ["classification", "upsert", "route", "dedup", "group"]
    assert [s.__name__ for s in PIPELINE] == [
        "classification_gate",
        "upsert",
        "load_state",
        "inhibit",
        "silence",
        "route",
        "deduplicate",
        "group",
        "enqueue",
    ]


def test_a_replayed_batch_changes_nothing_and_sends_nothing():
    store = store_for("org-a")
    batch = [breach("fp1"), breach("fp2")]
    dispatch(store, index_of("org-a"), batch, NOW, TIMING)
    outbox, log = dict(store.outbox), dict(store.log)
    report = dispatch(store, index_of("org-a"), batch, NOW + timedelta(seconds=5), TIMING)
    assert store.outbox == outbox
    assert store.log == log
    assert {d.reason for d in report.decisions if d.stage == "dedup"} == {
        "unchanged; repeat due 2026-03-02T16:00:00+00:00"
    }


def test_firing_resolved_firing_in_one_backlog_sends_each_transition_in_order():
    store = store_for("org-a")
    backlog = [breach("fp1", minutes=0), breach("fp1", BreachStatus.RESOLVED, minutes=1), breach("fp1", minutes=2)]
    assert [len(r) for r in transitions(backlog)] == [1, 1, 1]
    dispatch(store, index_of("org-a"), backlog, NOW, TIMING)

    sent = store.deliver_all()
    assert [(n.payload["status"], n.kind) for n in sent] == [
        ("firing", "alert"),
        ("resolved", "resolved"),
        ("firing", "alert"),
    ]
    assert [n.next_attempt_at - NOW for n in sent] == [
        timedelta(seconds=30),
        timedelta(minutes=5, seconds=30),
        timedelta(minutes=10, seconds=30),
    ]
    # The resolution says when the episode began; the new firing starts an episode of its own.
    assert [n.payload["alerts"][0]["starts_at"] for n in sent] == [
        "2026-03-02T10:00:00+00:00",
        "2026-03-02T10:00:00+00:00",
        "2026-03-02T10:02:00+00:00",
    ]
    assert store.log[("org-a", "immediate:hook-org-a", "fp1")].last_status == "firing:warning"
    assert store.rows[("org-a", "fp1")].firing


def test_a_resolution_joining_an_open_notification_is_what_the_log_records():
    store = store_for("org-a")
    dispatch(store, index_of("org-a"), [breach("fp1"), breach("fp2")], NOW, TIMING)
    # fp2 resolves while the notification still waits out its group wait: fp1 cannot change in it, fp2 can't either.
    dispatch(
        store,
        index_of("org-a"),
        [breach("fp2", BreachStatus.RESOLVED, minutes=1), breach("fp3")],
        NOW + timedelta(seconds=10),
        TIMING,
    )
    first, second = store.deliver_all()
    assert [(a["fingerprint"], a["status"]) for a in first.payload["alerts"]] == [
        ("fp1", "firing"),
        ("fp2", "firing"),
        ("fp3", "firing"),
    ]
    assert [(a["fingerprint"], a["status"]) for a in second.payload["alerts"]] == [("fp2", "resolved")]
    for fp, n in (("fp1", first), ("fp2", second), ("fp3", first)):
        carried = next(a for a in n.payload["alerts"] if a["fingerprint"] == fp)
        assert store.log[("org-a", "immediate:hook-org-a", fp)].last_status == state_in_payload(carried)


def test_the_sweep_repeats_an_unchanged_alert_once_the_repeat_interval_is_over():
    store = store_for("org-a")
    dispatch(store, index_of("org-a"), [breach("fp1")], NOW, TIMING)
    store.deliver_all()
    assert sweep(store, index_of("org-a"), NOW + timedelta(hours=1), TIMING).notifications_created == 0
    later = NOW + timedelta(hours=4, seconds=1)
    assert sweep(store, index_of("org-a"), later, TIMING).notifications_created == 1
    [repeat] = store.deliver_all()
    assert [a["fingerprint"] for a in repeat.payload["alerts"]] == ["fp1"]
    assert store.log[("org-a", "immediate:hook-org-a", "fp1")] == LogEntry("firing:warning", later)


def test_transactions_are_bounded_by_the_alerts_they_make_and_split_by_organisation():
    orgs = [f"org-{i:02d}" for i in range(30)]
    index = index_of(*orgs)
    breaches = [breach(f"fp{i}") for i in range(10)]  # 30 alerts each, 300 in all
    units = units_by_pairs(index, breaches, 100)
    # 10 organisations of 10 alerts each per transaction: each organisation's alerts all in one.
    assert [sorted(u.organisations or ()) for u in units] == [orgs[0:10], orgs[10:20], orgs[20:30]]
    assert all(u.breaches == breaches for u in units)
    assert [u.orphans for u in units] == [False, False, False]  # no resolution: no alert to close elsewhere
    assert not any(a.overlaps(b) for a in units for b in units if a is not b)
    assert units_by_pairs(index, breaches, 300) == [units_by_pairs(index, breaches, 300)[0]]
    assert units_by_pairs(index, breaches, 300)[0].organisations is None  # it all fits: one transaction
    # An organisation with more alerts than a transaction holds gets consecutive ones of its own, in order.
    alone = units_by_pairs(index_of("org-a"), breaches, 4)
    assert [[b.fingerprint for b in u.breaches] for u in alone] == [
        ["fp0", "fp1", "fp2", "fp3"],
        ["fp4", "fp5", "fp6", "fp7"],
        ["fp8", "fp9"],
    ]
    assert all(a.overlaps(b) for a in alone for b in alone)


def test_dispatching_unit_by_unit_gives_each_organisation_one_notification_and_closes_orphans_once():
    orgs = [f"org-{i:02d}" for i in range(6)]
    store = store_for(*orgs, "org-gone")
    index = index_of(*orgs)
    firing = [breach(f"fp{i}") for i in range(4)]
    for unit in units_by_pairs(index, firing, 8):
        dispatch(store, index, unit.breaches, NOW, TIMING, unit.organisations, unit.orphans)
    assert sorted(n.organisation_id for n in store.outbox.values()) == orgs
    assert all(len(n.payload["alerts"]) == 4 for n in store.outbox.values())
    assert len(store.rows) == 24
    # org-gone fired fp0 under a subscription since deleted: its resolution still closes the row, in one unit.
    store.rows[("org-gone", "fp0")] = dataclasses.replace(
        store.rows[("org-00", "fp0")], organisation_id="org-gone", id="gone-fp0"
    )
    resolved = breach("fp0", BreachStatus.RESOLVED, minutes=5)
    units = units_by_pairs(index, [resolved, breach("fp9")], 8)
    assert [u.orphans for u in units] == [True, False]
    reports = [dispatch(store, index, u.breaches, NOW, TIMING, u.organisations, u.orphans) for u in units]
    closed = [d for r in reports for d in r.decisions if d.organisation_id == "org-gone" and d.stage == "upsert"]
    assert [(d.decision, d.reason) for d in closed] == [("changed", "firing:warning -> resolved")]
    assert store.rows[("org-gone", "fp0")].status == BreachStatus.RESOLVED
    assert all(store.rows[(o, "fp0")].status == BreachStatus.RESOLVED for o in orgs)


def test_a_resolution_of_an_alert_never_raised_is_dropped_with_why_and_sends_nothing():
    store = store_for("org-a")
    report = dispatch(store, index_of("org-a"), [breach("fp1", BreachStatus.RESOLVED)], NOW, TIMING)
    assert (store.rows, store.outbox, store.log) == ({}, {}, {})
    assert [(d.stage, d.decision, d.reason) for d in report.decisions if d.decision == "drop"] == [
        ("upsert", "drop", "resolution of an alert this organisation never had")
    ]


def test_a_breach_observed_before_the_alert_it_updates_is_stale_and_changes_nothing():
    store = store_for("org-a")
    dispatch(store, index_of("org-a"), [breach("fp1", minutes=10)], NOW, TIMING)
    rows, outbox = dict(store.rows), dict(store.outbox)
    report = dispatch(store, index_of("org-a"), [breach("fp1", BreachStatus.RESOLVED, minutes=5)], NOW, TIMING)
    assert (store.rows, store.outbox) == (rows, outbox)
    [stale] = [d for d in report.decisions if d.stage == "upsert"]
    assert (stale.decision, stale.reason) == ("stale", "observed 2026-03-02T11:05:00+00:00, older than the alert")
