"""Silences: mute alerts by material, rule or severity until they expire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import Principal, organisation_of, tenant_admin, tenant_member
from services.notify.store import silences
from services.notify.store.models import utcnow
from shared.events import MaterialId

router = APIRouter(prefix="/v1/silences", tags=["silences"])


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    material: MaterialId | None = None
    rule: str | None = Field(default=None, min_length=1, max_length=200)
    severity: Literal["warning", "critical"] | None = None
    comment: str = Field(default="", max_length=2000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime


class SilenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    material: str | None
    rule: str | None
    severity: str | None
    comment: str
    created_by: str
    starts_at: datetime
    ends_at: datetime
    active: bool = False


def _out(row, now: datetime) -> SilenceOut:  # noqa: ANN001
    return SilenceOut.model_validate(row).model_copy(update={"active": row.starts_at <= now < row.ends_at})


@router.get("", response_model=list[SilenceOut])
def list_silences(
    active: bool = Query(default=False, description="Only silences in force now"),
    principal: Principal = Depends(tenant_member),
    session: Session = Depends(db_session),
) -> list[SilenceOut]:
    """The organisation's silences."""
    now = utcnow()
    rows = silences.list_silences(session, organisation_of(principal), active_at=now if active else None)
    return [_out(r, now) for r in rows]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SilenceOut)
def create_silence(
    body: SilenceIn, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> SilenceOut:
    """Silence matching alerts until `ends_at` (at most 90 days; admins)."""
    row = silences.create_silence(
        session,
        organisation_of(principal),
        material=body.material,
        rule=body.rule,
        severity=body.severity,
        comment=body.comment,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        created_by=principal.actor,
    )
    session.commit()
    return _out(row, utcnow())


@router.get("/{silence_id}", response_model=SilenceOut)
def get_silence(
    silence_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> SilenceOut:
    """One silence."""
    return _out(silences.get_silence(session, organisation_of(principal), silence_id), utcnow())


@router.delete("/{silence_id}", response_model=SilenceOut)
def expire_silence(
    silence_id: str, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> SilenceOut:
    """Expire a silence now (it stays listed, ended; admins)."""
    row = silences.expire_silence(session, organisation_of(principal), silence_id)
    session.commit()
    return _out(row, utcnow())
