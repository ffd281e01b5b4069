"""Export controls in force per material, from classified news: opened, updated, suspended and lifted."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from datetime import date

from shared.events import Classification

OPENING_MEASURES = ("export_ban", "export_licence", "export_quota", "export_tax", "sanction")

# How much a measure restricts supply, 0..1: a ban or sanction stops a flow, a quota caps it, a licence
# regime delays and can stop it case by case, a tax only raises its price.
MEASURE_SEVERITY = {"export_ban": 1.0, "sanction": 1.0, "export_quota": 0.8, "export_licence": 0.6, "export_tax": 0.4}

# An easing that says it is temporary suspends a control (it may come back); otherwise it lifts it.
_SUSPENSION = re.compile(r"\b(suspend\w*|paus\w*|postpone\w*|temporar\w*|delay\w*)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ExportControl:
    """One measure of one country on one material, with when it started and, if eased, when it ended."""

    country: str
    measure: str
    since: str  # ISO date the measure takes effect
    source: str
    item_id: str
    event_id: str
    url: str = ""
    title: str = ""
    classification: str = "public"
    until: str | None = None  # ISO date the measure was lifted or suspended
    ended_by: str | None = None  # "lifted" or "suspended"
    eased_item_id: str | None = None

    def status(self, as_of: date) -> str:
        """announced, in_force, suspended or lifted on a date."""
        if self.until is not None and date.fromisoformat(self.until) <= as_of:
            return self.ended_by or "lifted"
        if date.fromisoformat(self.since) > as_of:
            return "announced"
        return "in_force"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExportControl:
        return cls(**data)


def easing_kind(title: str, summary: str) -> str:
    """Whether an easing suspends a control or lifts it, from its words."""
    return "suspended" if _SUSPENSION.search(f"{title} {summary}") else "lifted"


def eased_measures(evidence: list[str]) -> tuple[str, ...]:
    """The measures an easing names, from its classifier evidence ('signal=export_licence: ...'); () for none."""
    named = {line.partition(":")[0].removeprefix("signal=") for line in evidence if line.startswith("signal=")}
    return tuple(m for m in OPENING_MEASURES if m in named)


def apply_control_news(
    controls: dict[str, ExportControl],
    *,
    measure: str,
    countries: list[str],
    effective: date,
    source: str,
    item_id: str,
    event_id: str,
    url: str,
    title: str,
    summary: str,
    classification: str,
    eases: tuple[str, ...] = (),
) -> tuple[dict[str, ExportControl], list[str]]:
    """Controls after one classified news item, and what changed (one line per control touched).

    An opening measure opens (or re-opens, or updates) the control keyed by country and measure; an easing
    ends the controls of the same countries from its effective date: only those of the measures it `eases`
    when it names any, and never one classified above the easing itself (a public item cannot see it).
    """
    out = dict(controls)
    changes: list[str] = []
    if measure in OPENING_MEASURES:
        for country in countries:
            key = f"{country}|{measure}"
            prior = out.get(key)
            since = effective.isoformat()
            if prior is not None and prior.until is None:
                # An update of a control already open keeps its start date and takes the newest reference.
                since = min(prior.since, since)
            out[key] = ExportControl(
                country=country,
                measure=measure,
                since=since,
                source=source,
                item_id=item_id,
                event_id=event_id,
                url=url,
                title=title[:300],
                classification=classification,
            )
            changes.append(f"{'updated' if prior and prior.until is None else 'opened'} {key}")
    elif measure == "easing":
        kind = easing_kind(title, summary)
        # A notice eases only controls its own classification may see.
        clearance = Classification(classification)
        for key, control in sorted(out.items()):
            if (
                control.country in countries
                and control.until is None
                and (not eases or control.measure in eases)
                and clearance.allows(control.classification)
            ):
                out[key] = replace(control, until=effective.isoformat(), ended_by=kind, eased_item_id=item_id)
                changes.append(f"{kind} {key}")
    return out, changes


def controls_in_force(controls: dict[str, ExportControl], as_of: date) -> list[ExportControl]:
    """The controls in force on a date, ordered by country and measure."""
    return [c for _, c in sorted(controls.items()) if c.status(as_of) == "in_force"]


def control_severity(in_force: list[ExportControl]) -> float:
    """The severity (0..1) of the most restrictive control in force; 0 when none."""
    return max((MEASURE_SEVERITY.get(c.measure, 0.0) for c in in_force), default=0.0)
