"""The breaches open now, whoever they concerned when they fired: what catch-up offers a new subscription."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.notify.store.models import Alert, OpenBreach
from shared.events import BreachRaised, BreachStatus


def remember(session: Session, breaches: Iterable[BreachRaised]) -> None:
    """Keep each fingerprint's latest state: firing is kept, resolved forgotten; an older one changes nothing."""
    latest: dict[str, BreachRaised] = {}
    for breach in breaches:
        seen = latest.get(breach.fingerprint)
        if seen is None or breach.observed_at >= seen.observed_at:
            latest[breach.fingerprint] = breach
    if not latest:
        return
    kept = {
        row.fingerprint: row
        for row in session.scalars(select(OpenBreach).where(OpenBreach.fingerprint.in_(latest)).with_for_update())
    }
    for fingerprint, breach in latest.items():
        row = kept.get(fingerprint)
        if row is not None and breach.observed_at < row.observed_at:
            continue  # a replay of an older state
        if breach.status == BreachStatus.RESOLVED:
            if row is not None:
                session.execute(delete(OpenBreach).where(OpenBreach.fingerprint == fingerprint))
        elif row is None:
            session.add(
                OpenBreach(
                    fingerprint=fingerprint,
                    material=breach.material,
                    observed_at=breach.observed_at,
                    breach=breach.model_dump(mode="json"),
                )
            )
        else:
            row.observed_at, row.breach = breach.observed_at, breach.model_dump(mode="json")
    session.flush()


def open_breaches(session: Session) -> list[BreachRaised]:
    """Every breach open now, oldest first."""
    rows = session.scalars(select(OpenBreach).order_by(OpenBreach.observed_at, OpenBreach.fingerprint))
    return [BreachRaised.model_validate(row.breach) for row in rows]


def organisations_alerted(session: Session, fingerprints: Iterable[str]) -> set[tuple[str, str]]:
    """(organisation, fingerprint) of every alert row of these fingerprints, firing or not."""
    fingerprints = list(fingerprints)
    if not fingerprints:
        return set()
    return {
        (org, fp)
        for org, fp in session.execute(
            select(Alert.organisation_id, Alert.fingerprint).where(Alert.fingerprint.in_(fingerprints))
        )
    }
