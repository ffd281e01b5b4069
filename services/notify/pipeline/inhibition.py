"""Inhibit rules: a firing source alert mutes the firing target alerts of the same organisation and material.

Alertmanager's inhibit_rules, with the matchers the notifier's alerts have: rule names (shell patterns) and a
severity on each side; `organisation_id` and `material` must be equal. The source and the target are alerts of
different rules: one rule has one alert per material and organisation (its fingerprint), so a rule that could
only mute its own rule's alert would never fire.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from services.notify.pipeline.alert import Alert
from shared.events import Severity


class InhibitRule(BaseModel):
    """While an alert matching `source_*` fires, firing alerts matching `target_*` of the same organisation and
    material are inhibited (kept, listed as inhibited, never sent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_rules: tuple[str, ...] = Field(min_length=1, description="Rule names or shell patterns of the source")
    source_severity: Severity | None = Severity.CRITICAL
    target_rules: tuple[str, ...] = Field(min_length=1, description="Rule names or shell patterns of the target")
    target_severity: Severity | None = Severity.WARNING

    def is_source(self, alert: Alert) -> bool:
        return alert.firing and _matches(alert, self.source_rules, self.source_severity)

    def is_target(self, alert: Alert) -> bool:
        return alert.firing and _matches(alert, self.target_rules, self.target_severity)

    def describe(self) -> str:
        return (
            f"{'|'.join(self.source_rules)} ({self.source_severity or 'any'}) inhibits "
            f"{'|'.join(self.target_rules)} ({self.target_severity or 'any'})"
        )


def _matches(alert: Alert, rules: Sequence[str], severity: Severity | None) -> bool:
    return (severity is None or alert.severity == severity) and any(fnmatch.fnmatchcase(alert.rule, p) for p in rules)


# A critical export control on a material makes its warning-level price moves expected news.
DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        source_rules=("export-control-*",),
        source_severity=Severity.CRITICAL,
        target_rules=("price-*",),
        target_severity=Severity.WARNING,
    ),
)


def source_severities(rules: Iterable[InhibitRule]) -> set[Severity] | None:
    """The severities a source alert may have (None: any), so the store loads only the alerts that may inhibit."""
    severities: set[Severity] = set()
    for rule in rules:
        if rule.source_severity is None:
            return None
        severities.add(rule.source_severity)
    return severities


SourceIndex = dict[tuple[str, str], list[Alert]]  # (organisation_id, material) -> firing alerts, by rule


def index_sources(firing: Iterable[Alert]) -> SourceIndex:
    """The firing alerts by organisation and material, the keys an inhibition must share."""
    index: SourceIndex = {}
    for alert in sorted(firing, key=lambda a: (a.rule, a.fingerprint)):
        if alert.firing:
            index.setdefault((alert.organisation_id, alert.material), []).append(alert)
    return index


def inhibitor(alert: Alert, sources: SourceIndex, rules: Sequence[InhibitRule]) -> tuple[Alert, InhibitRule] | None:
    """The firing alert (and the rule) that inhibits this one, or None. An alert never inhibits itself."""
    if not alert.firing or not rules:
        return None
    targeting = [rule for rule in rules if rule.is_target(alert)]
    if not targeting:
        return None
    for source in sources.get((alert.organisation_id, alert.material), ()):
        if source.fingerprint == alert.fingerprint:
            continue
        for rule in targeting:
            if rule.is_source(source):
                return source, rule
    return None


__all__ = ["DEFAULT_INHIBIT_RULES", "InhibitRule", "SourceIndex", "index_sources", "inhibitor", "source_severities"]
