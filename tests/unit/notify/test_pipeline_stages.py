"""Each alert pipeline stage alone: what it passes on, what it drops, and the reason it gives."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notify.pipeline import (
    Alert,
    GroupState,
    LogEntry,
    PipelineContext,
    Silence,
    Timing,
    classification_gate,
    deduplicate,
    group,
    inhibit,
    route,
    run_pipeline,
    silence,
)
from services.notify.pipeline.alert import ChannelRoute, OpenSlot, QuietHours
from services.notify.pipeline.inhibition import DEFAULT_INHIBIT_RULES, InhibitRule
from services.notify.pipeline.stages import next_tick
from services.scoring.rules import fingerprint
from shared.events import BreachStatus, Classification, Severity

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def alert(
    fp: str = "fp1",
    org: str = "org-a",
    material: str = "gallium",
    rule: str = "price_spike",
    severity: Severity = Severity.WARNING,
    status: BreachStatus = BreachStatus.FIRING,
    classification: Classification = Classification.PUBLIC,
    **kw,
) -> Alert:
    return Alert(
        organisation_id=org,
        fingerprint=fp,
        material=material,
        rule=rule,
        severity=severity,
        status=status,
        classification=classification,
        starts_at=NOW - timedelta(hours=1),
        summary="s",
        id=f"id-{fp}",
        **kw,
    )


def test_classification_gate_drops_alerts_above_the_organisations_clearance():
    ctx = PipelineContext(now=NOW, clearance={"company": Classification.PUBLIC, "ministry": Classification.GOVERNMENT})
    restricted = [
        alert(org="company", classification=Classification.RESTRICTED),
        alert(org="ministry", classification=Classification.RESTRICTED),
        alert(org="stranger", classification=Classification.PUBLIC),
    ]
    kept = classification_gate(ctx, restricted)
    assert [a.organisation_id for a in kept] == ["ministry"]
    assert [(d.organisation_id, d.decision, d.reason) for d in ctx.decisions] == [
        ("company", "drop", "classified restricted, above clearance public"),
        ("ministry", "pass", "classified restricted, within clearance government"),
        ("stranger", "drop", "organisation unknown"),
    ]


CLEARED = {"org-a": Classification.GOVERNMENT, "org-b": Classification.GOVERNMENT}


def real(material: str, rule: str, **kw) -> Alert:
    """An alert with the fingerprint scoring gives the breach: one per material and rule."""
    return alert(fingerprint(material, rule), material=material, rule=rule, **kw)


def test_a_critical_export_control_inhibits_the_warning_price_alerts_of_its_material_and_organisation():
    # With real fingerprints a rule's warning and critical are one alert: an inhibition within one rule (as
    # before) could never fire. The default rule crosses rules: export control over price.
    export = real("gallium", "export-control-in-force", severity=Severity.CRITICAL)
    ctx = PipelineContext(now=NOW, firing=[export], inhibit_rules=DEFAULT_INHIBIT_RULES, clearance=CLEARED)
    price = real("gallium", "price-change-30d")
    price_critical = real("gallium", "price-jump", severity=Severity.CRITICAL)
    other_material = real("germanium", "price-change-30d")
    other_org = real("gallium", "price-change-30d", org="org-b")
    leadtime = real("gallium", "leadtime-ratio")
    resolved = real("gallium", "price-volatility", status=BreachStatus.RESOLVED)
    kept = inhibit(ctx, [price, price_critical, other_material, other_org, leadtime, resolved])
    assert kept == [price_critical, other_material, other_org, leadtime, resolved]
    [decision] = ctx.decisions
    assert (decision.fingerprint, decision.decision) == (price.fingerprint, "inhibited")
    assert decision.reason.startswith(f"inhibited by critical alert {export.id} (export-control-in-force) for gallium")


def test_an_escalating_alert_never_inhibits_itself_and_a_batch_resolution_lifts_the_inhibition():
    warning = real("gallium", "export-control-in-force")
    critical = warning.evolve(severity=Severity.CRITICAL)
    ctx = PipelineContext(
        now=NOW,
        firing=[critical],
        clearance=CLEARED,
        inhibit_rules=(
            InhibitRule(
                source_rules=("export-control-*",),
                source_severity=Severity.CRITICAL,
                target_rules=("export-control-*", "price-*"),
                target_severity=Severity.WARNING,
            ),
        ),
    )
    assert inhibit(ctx, [warning]) == [warning]
    price = real("gallium", "price-jump")
    ended = critical.evolve(status=BreachStatus.RESOLVED)
    assert inhibit(ctx, [ended, price]) == [ended, price]


def test_no_inhibit_rules_inhibit_nothing():
    ctx = PipelineContext(
        now=NOW, firing=[real("gallium", "export-control-in-force", severity=Severity.CRITICAL)], clearance=CLEARED
    )
    price = real("gallium", "price-jump")
    assert inhibit(ctx, [price]) == [price]


def test_an_alert_above_the_organisations_clearance_now_inhibits_nothing():
    hidden = real(
        "gallium", "export-control-in-force", severity=Severity.CRITICAL, classification=Classification.GOVERNMENT
    )
    ctx = PipelineContext(
        now=NOW, firing=[hidden], inhibit_rules=DEFAULT_INHIBIT_RULES, clearance={"org-a": Classification.RESTRICTED}
    )
    price = real("gallium", "price-jump")
    assert inhibit(ctx, [price]) == [price]


def test_only_active_matching_silences_mute_firing_alerts():
    ctx = PipelineContext(
        now=NOW,
        silences=[
            Silence("org-a", NOW - timedelta(hours=1), NOW + timedelta(hours=1), material="antimony", id="s1"),
            Silence("org-a", NOW - timedelta(hours=2), NOW - timedelta(hours=1), material="gallium", id="expired"),
            Silence("org-a", NOW + timedelta(hours=1), NOW + timedelta(hours=2), rule="price_spike", id="future"),
            Silence("org-a", NOW - timedelta(hours=1), NOW + timedelta(hours=1), severity="critical", id="crit"),
        ],
    )
    alerts = [
        alert("sb", material="antimony"),
        alert("ga"),
        alert("ga-crit", severity=Severity.CRITICAL),
        alert("sb-res", material="antimony", status=BreachStatus.RESOLVED),
        alert("sb-b", org="org-b", material="antimony"),
    ]
    kept = silence(ctx, alerts)
    assert [a.fingerprint for a in kept] == ["ga", "sb-res", "sb-b"]
    assert [d.reason.split(" until")[0] for d in ctx.decisions] == ["silence s1", "silence crit"]


def test_route_puts_warnings_for_a_digest_channel_in_the_digest_and_criticals_in_the_immediate_group():
    ctx = PipelineContext(
        now=NOW,
        channels={
            "mail": ChannelRoute("mail", "org-a", mode="digest"),
            "hook": ChannelRoute("hook", "org-a"),
            "off": ChannelRoute("off", "org-a", enabled=False),
            "foreign": ChannelRoute("foreign", "org-b"),
        },
    )
    warning = alert("w", channel_ids=("mail", "hook", "off", "foreign"))
    critical = alert("c", severity=Severity.CRITICAL, channel_ids=("mail",))
    routed = route(ctx, [warning, critical])
    assert [(a.fingerprint, a.channel_id, a.group_key) for a in routed] == [
        ("w", "mail", "digest:mail"),
        ("w", "hook", "immediate:hook"),
        ("c", "mail", "immediate:mail"),
    ]
    dropped = [(d.channel_id, d.reason) for d in ctx.decisions if d.decision == "drop"]
    assert dropped == [("off", "channel disabled"), ("foreign", "channel unknown to the organisation")]


def _routed(a: Alert, key: str = "immediate:hook") -> Alert:
    return dataclasses.replace(a, channel_id="hook", group_key=key)


def test_dedup_sends_new_changed_and_due_repeats_and_drops_the_rest():
    timing = Timing(repeat_interval=timedelta(hours=4))
    recent, old = NOW - timedelta(hours=1), NOW - timedelta(hours=5)
    ctx = PipelineContext(
        now=NOW,
        timing=timing,
        log={
            ("org-a", "immediate:hook", "same"): LogEntry("firing:warning", recent),
            ("org-a", "immediate:hook", "stale"): LogEntry("firing:warning", old),
            ("org-a", "immediate:hook", "escalated"): LogEntry("firing:warning", recent),
            ("org-a", "immediate:hook", "acked"): LogEntry("firing:warning", old),
            ("org-a", "immediate:hook", "was-firing"): LogEntry("firing:critical", recent),
            ("org-a", "immediate:hook", "done"): LogEntry("resolved", recent),
        },
    )
    alerts = [
        _routed(alert("new")),
        _routed(alert("same")),
        _routed(alert("stale")),
        _routed(alert("escalated", severity=Severity.CRITICAL)),
        _routed(alert("acked", acknowledged_at=recent)),
        _routed(alert("was-firing", status=BreachStatus.RESOLVED)),
        _routed(alert("never-sent", status=BreachStatus.RESOLVED)),
        _routed(alert("done", status=BreachStatus.RESOLVED)),
    ]
    kept = deduplicate(ctx, alerts)
    assert [a.fingerprint for a in kept] == ["new", "stale", "escalated", "was-firing"]
    reasons = {d.fingerprint: d.reason for d in ctx.decisions}
    assert reasons["same"] == "unchanged; repeat due 2026-03-02T15:00:00+00:00"
    assert reasons["escalated"] == "changed from firing:warning to firing:critical"
    assert reasons["acked"].startswith("unchanged and acknowledged")


def test_group_waits_for_a_new_group_joins_an_open_one_and_ticks_for_updates():
    timing = Timing(
        group_wait=timedelta(seconds=30),
        group_interval=timedelta(minutes=5),
        digest_at=datetime(2026, 1, 1, 7, 0).time(),
    )
    ctx = PipelineContext(
        now=NOW,
        timing=timing,
        groups={
            "immediate:open": GroupState(open=(OpenSlot("n-open", NOW + timedelta(seconds=10)),)),
            "immediate:sent": GroupState(last_flush_at=NOW - timedelta(minutes=7)),
        },
    )
    alerts = [
        _routed(alert("a"), "immediate:new"),
        _routed(alert("b"), "immediate:new"),
        _routed(alert("c"), "immediate:open"),
        _routed(alert("d"), "immediate:sent"),
        _routed(alert("e"), "digest:mail"),
    ]
    due = {a.fingerprint: a.due_at for a in group(ctx, alerts)}
    assert due == {
        "a": datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC),  # group wait
        "b": datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC),  # joins a's notification
        "c": datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC),
        "d": datetime(2026, 3, 2, 12, 3, tzinfo=UTC),  # flushed 11:53, ticks 11:58, 12:03
        "e": datetime(2026, 3, 3, 7, 0, tzinfo=UTC),  # tomorrow's digest
    }
    assert [d.decision for d in ctx.decisions] == ["new_group", "joined", "joined", "update", "digest"]


def test_next_tick_is_the_interval_after_the_flush_when_that_is_still_ahead():
    flushed = NOW - timedelta(minutes=2)
    assert next_tick(flushed, timedelta(minutes=5), NOW) == NOW + timedelta(minutes=3)
    assert next_tick(flushed, timedelta(0), NOW) == NOW


def test_next_digest_is_today_before_the_hour_and_tomorrow_after_it():
    timing = Timing(digest_at=datetime(2026, 1, 1, 7, 0).time())
    assert timing.next_digest(datetime(2026, 3, 2, 6, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert timing.next_digest(datetime(2026, 3, 2, 7, 0, tzinfo=UTC)) == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)


def test_pipeline_keeps_every_decision_with_its_stage():
    ctx = PipelineContext(
        now=NOW, clearance={"org-a": Classification.PUBLIC}, channels={"hook": ChannelRoute("hook", "org-a")}
    )
    out = run_pipeline(
        ctx, [alert("x", channel_ids=("hook",))], (classification_gate, inhibit, silence, route, deduplicate, group)
    )
    assert [a.group_key for a in out] == ["immediate:hook"]
    assert [(d.stage, d.decision) for d in ctx.decisions] == [
        ("classification", "pass"),
        ("route", "routed"),
        ("dedup", "send"),
        ("group", "new_group"),
    ]


def test_evolving_an_alert_changes_only_the_fields_given_and_refuses_unknown_ones():
    import pytest

    original = alert("fp1")
    evolved = original.evolve(channel_id="hook-1", group_key="immediate:hook-1", changed=False)
    assert evolved == dataclasses.replace(original, channel_id="hook-1", group_key="immediate:hook-1", changed=False)
    assert (original.channel_id, original.group_key, original.changed) == (None, None, True)
    with pytest.raises(TypeError, match="no field colour"):
        original.evolve(colour="red")
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.channel_id = "other"  # type: ignore[misc]


def test_quiet_hours_release_at_their_end_in_local_time_across_midnight_and_daylight_saving():
    amsterdam = ZoneInfo("Europe/Amsterdam")
    night = QuietHours(22, 7)
    at = datetime(2026, 3, 28, 23, 30, tzinfo=amsterdam)  # the night the clocks go forward
    assert night.release(at, amsterdam) == datetime(2026, 3, 29, 7, 0, tzinfo=amsterdam).astimezone(UTC)
    early = datetime(2026, 6, 1, 3, 0, tzinfo=amsterdam)
    assert night.release(early, amsterdam) == datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
    day = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert night.release(day, amsterdam) == day
    lunch = QuietHours(12, 13)
    assert lunch.release(datetime(2026, 6, 1, 12, 15, tzinfo=UTC), UTC) == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


def test_the_weekly_digest_falls_on_its_weekday_at_the_digest_hour_of_the_zone():
    timing = Timing(digest_at=time(7, 0), digest_weekday=0)
    wednesday = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert timing.next_weekly_digest(wednesday) == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
    monday_early = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
    assert timing.next_weekly_digest(monday_early) == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
    monday_on_the_hour = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
    assert timing.next_weekly_digest(monday_on_the_hour) == datetime(2026, 3, 16, 7, 0, tzinfo=UTC)
    amsterdam = ZoneInfo("Europe/Amsterdam")
    assert timing.next_digest(wednesday, amsterdam) == datetime(2026, 3, 5, 6, 0, tzinfo=UTC)


def test_route_drops_firing_alerts_below_the_channels_minimum_but_passes_resolutions_and_criticals_skip_quiet():
    ctx = PipelineContext(
        now=NOW,
        channels={
            "loud": ChannelRoute("loud", "org-a", min_severity=Severity.CRITICAL),
            "night": ChannelRoute("night", "org-a", quiet=QuietHours(22, 7)),
            "weekly": ChannelRoute("weekly", "org-a", mode="digest", digest_every="week"),
        },
    )
    warning = alert("w", channel_ids=("loud", "night", "weekly"))
    critical = alert("c", severity=Severity.CRITICAL, channel_ids=("loud", "night", "weekly"))
    resolved = alert("r", status=BreachStatus.RESOLVED, channel_ids=("loud",))
    routed = {(a.fingerprint, a.channel_id): a.group_key for a in route(ctx, [warning, critical, resolved])}
    assert routed == {
        ("w", "night"): "quiet:night",
        ("w", "weekly"): "weekly:weekly",
        ("c", "loud"): "immediate:loud",
        ("c", "night"): "immediate:night",
        ("c", "weekly"): "immediate:weekly",
        ("r", "loud"): "immediate:loud",
    }
    assert [d.reason for d in ctx.decisions if d.decision == "drop"] == [
        "warning, below the channel's minimum critical"
    ]
