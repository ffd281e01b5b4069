"""The breach state machine: hold time, escalation, de-escalation, hysteresis."""

from __future__ import annotations

import hashlib

from services.scoring.rules import Rule, RuleState, evaluate_rule, fingerprint, resolve_removed

H = 3600.0
RULE = Rule(
    name="price-change-1d",
    indicator="price_change_1d_pct",
    direction="above",
    warning=20.0,
    critical=40.0,
    clear=10.0,
    for_seconds=2 * H,
)


def run(rule, points):
    """(time, value) pairs through the rule; returns the transition kinds and severities."""
    state, out = RuleState(), []
    for at, value in points:
        state, tr = evaluate_rule(rule, state, value, at)
        if tr is not None:
            out.append((at, tr.kind, tr.severity, tr.threshold))
    return state, out


def test_breach_fires_only_after_condition_held_for_the_hold_time():
    _, out = run(RULE, [(0, 25.0), (1 * H, 26.0), (2 * H, 24.0)])
    assert out == [(2 * H, "fired", "warning", 20.0)]


def test_condition_interrupted_before_hold_time_does_not_fire():
    _, out = run(RULE, [(0, 25.0), (1 * H, 5.0), (2 * H, 25.0), (3 * H, 25.0)])
    assert out == []


def test_fired_breach_starts_when_the_condition_began():
    rule = RULE
    state, _ = evaluate_rule(rule, RuleState(), 25.0, 0)
    state, tr = evaluate_rule(rule, state, 25.0, 2 * H)
    assert tr is not None
    assert tr.starts_at == 0


def test_breach_escalates_to_critical_and_deescalates_past_warning():
    rule = Rule("r", "price_change_1d_pct", "above", 20.0, 40.0, 10.0)
    _, out = run(rule, [(0, 25.0), (1, 45.0), (2, 30.0), (3, 15.0), (4, 45.0)])
    assert out == [
        (0, "fired", "warning", 20.0),
        (1, "escalated", "critical", 40.0),
        (3, "deescalated", "warning", 20.0),
        (4, "escalated", "critical", 40.0),
    ]


def test_breach_resolves_only_below_clear_threshold():
    rule = Rule("r", "price_change_1d_pct", "above", 20.0, 40.0, 10.0)
    state, out = run(rule, [(0, 25.0), (1, 19.0), (2, 12.0), (3, 10.0), (4, 9.9)])
    assert out == [(0, "fired", "warning", 20.0), (4, "resolved", "warning", 10.0)]
    assert state == RuleState()


def test_value_oscillating_around_warning_threshold_does_not_flap():
    rule = Rule("r", "x", "above", 20.0, 40.0, 10.0)
    _, out = run(rule, [(i, 21.0 if i % 2 else 19.0) for i in range(1, 20)])
    assert [k for _, k, _, _ in out] == ["fired"]


def test_first_value_above_critical_fires_critical():
    rule = Rule("r", "x", "above", 20.0, 40.0, 10.0)
    _, out = run(rule, [(0, 50.0)])
    assert out == [(0, "fired", "critical", 40.0)]


def test_below_rule_mirrors_above():
    rule = Rule("r", "x", "below", -20.0, -40.0, -10.0)
    _, out = run(rule, [(0, -25.0), (1, -45.0), (2, -15.0), (3, -5.0)])
    assert out == [
        (0, "fired", "warning", -20.0),
        (1, "escalated", "critical", -40.0),
        (2, "deescalated", "warning", -20.0),
        (3, "resolved", "warning", -10.0),
    ]


def test_missing_value_changes_nothing():
    state = RuleState(open_severity="warning", open_since=0)
    assert evaluate_rule(RULE, state, None, 10) == (state, None)


def test_removed_rule_resolves_its_open_breach_with_the_reason():
    tr = resolve_removed(RuleState(open_severity="critical", open_since=5), 9, "removed")
    assert (tr.kind, tr.severity, tr.starts_at, tr.ends_at, tr.reason) == ("resolved", "critical", 5, 9, "removed")
    assert resolve_removed(RuleState(pending_since=3), 9, "removed") is None


def test_fingerprint_is_truncated_sha256_of_material_and_rule():
    assert fingerprint("gallium", "price-change-1d") == hashlib.sha256(b"gallium|price-change-1d").hexdigest()[:16]
