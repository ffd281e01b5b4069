"""Silences: mute an organisation's alerts by material, rule or severity until an expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store.errors import NotFound, Rejected
from services.notify.store.models import Silence, utcnow

MAX_SILENCE = timedelta(days=90)  # a forgotten silence must not hide a crisis for ever


def create_silence(
    session: Session,
    organisation_id: str,
    *,
    ends_at: datetime,
    created_by: str,
    material: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    comment: str = "",
    starts_at: datetime | None = None,
    now: datetime | None = None,
) -> Silence:
    """Add a silence matching every given field; at least one field, ending in the future, within 90 days."""
    now = now or utcnow()
    starts_at = starts_at or now
    if material is None and rule is None and severity is None:
        raise Rejected("a silence needs at least one of material, rule, severity")
    if ends_at <= max(starts_at, now):
        raise Rejected("ends_at must be after starts_at and in the future")
    if ends_at - starts_at > MAX_SILENCE:
        raise Rejected(f"a silence may last at most {MAX_SILENCE.days} days")
    silence = Silence(
        organisation_id=organisation_id,
        material=material,
        rule=rule,
        severity=severity,
        comment=comment,
        created_by=created_by[:320],
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(silence)
    session.flush()
    return silence


def list_silences(session: Session, organisation_id: str, *, active_at: datetime | None = None) -> list[Silence]:
    """An organisation's silences, newest first; only those in force at a time if one is given."""
    query = select(Silence).where(Silence.organisation_id == organisation_id)
    if active_at is not None:
        query = query.where(Silence.starts_at <= active_at, Silence.ends_at > active_at)
    return list(session.scalars(query.order_by(Silence.starts_at.desc(), Silence.id)))


def get_silence(session: Session, organisation_id: str, silence_id: str) -> Silence:
    """One silence of the organisation."""
    silence = session.get(Silence, silence_id)
    if silence is None or silence.organisation_id != organisation_id:
        raise NotFound("silence not found")
    return silence


def expire_silence(session: Session, organisation_id: str, silence_id: str, now: datetime | None = None) -> Silence:
    """End a silence now (an already ended one keeps its end)."""
    silence = get_silence(session, organisation_id, silence_id)
    now = now or utcnow()
    if silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        session.flush()
    return silence
