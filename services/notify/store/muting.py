"""Why a firing alert is not being sent now: the silence that mutes it, or the alert that inhibits it.

The alerts API marks each alert with what the pipeline's silence and inhibit stages would decide at this moment,
from the same silences, firing alerts and inhibit rules, so a muted alert is never listed as plainly firing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.pipeline.alert import Silence
from services.notify.pipeline.inhibition import InhibitRule, index_sources, inhibitor
from services.notify.store import models
from services.notify.store.alert_state import alert_from_row, inhibition_sources
from shared.events import Classification


@dataclass(frozen=True)
class Muting:
    """`state` is `silenced` (by the silence `id`) or `inhibited` (by the alert `id`); `reason` says how."""

    state: str
    id: str
    reason: str
    fingerprint: str | None = None


def mutings(
    session: Session,
    organisation_id: str,
    clearance: Classification,
    rows: Iterable[models.Alert],
    now: datetime,
    rules: Sequence[InhibitRule],
) -> dict[str, Muting]:
    """The muting of each firing alert of these rows that is muted, by alert id (silence first, as the pipeline).

    Only an alert within the clearance inhibits, in the pipeline as here: a muting never names a hidden alert."""
    firing = [alert_from_row(r) for r in rows if r.status == "firing"]
    if not firing:
        return {}
    silences = [
        Silence(r.organisation_id, r.starts_at, r.ends_at, r.material, r.rule, r.severity, r.id)
        for r in session.scalars(
            select(models.Silence).where(
                models.Silence.organisation_id == organisation_id, models.Silence.ends_at > now
            )
        )
    ]
    sources = index_sources(
        a for a in inhibition_sources(session, [organisation_id], rules) if clearance.allows(a.classification)
    )
    out: dict[str, Muting] = {}
    for alert in firing:
        assert alert.id is not None
        silence = next((s for s in silences if s.active(now) and s.matches(alert)), None)
        if silence is not None:
            out[alert.id] = Muting("silenced", silence.id, f"silence {silence.id} until {silence.ends_at.isoformat()}")
            continue
        found = inhibitor(alert, sources, rules)
        if found is not None:
            source, rule = found
            assert source.id is not None
            out[alert.id] = Muting(
                "inhibited",
                source.id,
                f"inhibited by {source.severity.value} alert {source.id} "
                f"({source.rule}) for {alert.material}: {rule.describe()}",
                source.fingerprint,
            )
    return out


__all__ = ["Muting", "mutings"]
