"""The breach state machine: one rule, one material, one value at a time; pure and deterministic.

A rule's condition must hold for `for` (in event time) before a breach fires. An open breach escalates to
critical when the value crosses the critical threshold, de-escalates to warning when it falls back past the
warning threshold, and resolves only when it passes the clear threshold, so a value hovering around a
threshold does not flap.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Literal

Direction = Literal["above", "below"]
Level = Literal["warning", "critical"]


@dataclass(frozen=True)
class Rule:
    """A declarative rule: an indicator, thresholds, a direction, a hold time and a clear threshold."""

    name: str
    indicator: str
    direction: Direction
    warning: float | None
    critical: float | None
    clear: float
    for_seconds: float = 0.0
    description: str = ""
    parameter: str = ""  # the CRMA Art. 20(1) monitoring parameter the rule watches (config.PARAMETERS)
    source: str = ""  # where the threshold comes from

    def crosses(self, value: float, threshold: float | None) -> bool:
        """Whether a value is at or beyond a threshold in the rule's direction."""
        if threshold is None:
            return False
        return value >= threshold if self.direction == "above" else value <= threshold

    def level(self, value: float) -> Level | None:
        """The severity a value calls for, if any."""
        if self.crosses(value, self.critical):
            return "critical"
        if self.crosses(value, self.warning):
            return "warning"
        return None

    def cleared(self, value: float) -> bool:
        """Whether a value has passed back beyond the clear threshold."""
        return value < self.clear if self.direction == "above" else value > self.clear

    def threshold_of(self, level: Level) -> float | None:
        return self.critical if level == "critical" else self.warning


@dataclass(frozen=True)
class RuleState:
    """Where one rule stands for one material: pending since when, or open since when at which severity."""

    pending_since: float | None = None  # event time (epoch seconds) the condition started to hold
    open_severity: Level | None = None
    open_since: float | None = None
    indicator: str | None = None  # what the open breach is about, so it can be resolved if its rule goes away
    value: float | None = None  # the value at the last transition

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> RuleState:
        return cls(**data)


@dataclass(frozen=True)
class Transition:
    """A change of a breach: fired, escalated, de-escalated or resolved, with the threshold that decided it."""

    kind: Literal["fired", "escalated", "deescalated", "resolved"]
    severity: Level
    threshold: float | None
    starts_at: float
    ends_at: float | None = None
    reason: str = ""

    @property
    def firing(self) -> bool:
        return self.kind != "resolved"


def fingerprint(material: str, rule: str) -> str:
    """The stable identity of the one breach a rule may have open for a material."""
    return hashlib.sha256(f"{material}|{rule}".encode()).hexdigest()[:16]


def evaluate_rule(rule: Rule, state: RuleState, value: float | None, at: float) -> tuple[RuleState, Transition | None]:
    """The rule's next state for a value observed at event time `at`, and the breach transition it causes."""
    if value is None:
        # No data for the indicator: nothing can be decided, so nothing changes.
        return state, None
    level = rule.level(value)
    if state.open_severity is None:
        if level is None:
            return (RuleState() if state.pending_since is not None else state), None
        since = state.pending_since if state.pending_since is not None else at
        if at - since < rule.for_seconds:
            return RuleState(pending_since=since), None
        return (
            RuleState(open_severity=level, open_since=since),
            Transition("fired", level, rule.threshold_of(level), since, reason=f"{level} threshold crossed"),
        )
    open_since = state.open_since if state.open_since is not None else at
    if rule.cleared(value):
        return RuleState(), Transition(
            "resolved", state.open_severity, rule.clear, open_since, at, reason="value passed the clear threshold"
        )
    if level == "critical" and state.open_severity == "warning":
        return (
            RuleState(open_severity="critical", open_since=open_since),
            Transition("escalated", "critical", rule.critical, open_since, reason="critical threshold crossed"),
        )
    if level is None and state.open_severity == "critical" and rule.warning is not None:
        # Back past the warning threshold but not yet clear: still a breach, no longer critical.
        return (
            RuleState(open_severity="warning", open_since=open_since),
            Transition(
                "deescalated", "warning", rule.warning, open_since, reason="value fell back past the warning threshold"
            ),
        )
    return state, None


def resolve_removed(state: RuleState, at: float, reason: str) -> Transition | None:
    """The resolution of a breach whose rule no longer applies (removed or disabled); None if none is open."""
    if state.open_severity is None:
        return None
    since = state.open_since if state.open_since is not None else at
    return Transition("resolved", state.open_severity, None, since, at, reason=reason)
