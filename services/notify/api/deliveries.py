"""Deliveries: the outbox of the organisation, each notification's attempts, and replay of failed ones."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import Principal, organisation_of, tenant_admin, tenant_member
from services.notify.store import deliveries

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
Status = Literal["pending", "sending", "delivered", "failed", "cancelled"]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    channel_id: str
    kind: str
    alert_ids: list[Any]
    group_key: str
    webhook_id: str
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    attempted_at: datetime
    outcome: str
    status_code: int | None
    error: str | None


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any]
    attempt_log: list[AttemptOut]


@router.get("", response_model=list[DeliveryOut])
def list_deliveries(
    status: Status | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
    principal: Principal = Depends(tenant_member),
    session: Session = Depends(db_session),
) -> list[DeliveryOut]:
    """The organisation's notifications (`?status=failed`: what needs a replay)."""
    rows = deliveries.list_deliveries(session, organisation_of(principal), status=status, limit=limit)
    return [DeliveryOut.model_validate(r) for r in rows]


@router.get("/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(
    delivery_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> DeliveryDetail:
    """One notification with its payload and every attempt."""
    row = deliveries.get_delivery(session, organisation_of(principal), delivery_id)
    attempts = [AttemptOut.model_validate(a) for a in deliveries.list_attempts(session, row.id)]
    return DeliveryDetail(**DeliveryOut.model_validate(row).model_dump(), payload=row.payload, attempt_log=attempts)


@router.post("/{delivery_id}/replay", response_model=DeliveryOut)
def replay_delivery(
    delivery_id: str, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> DeliveryOut:
    """Send a failed notification again, from its first attempt, with the same webhook id (admins)."""
    row = deliveries.replay_delivery(session, organisation_of(principal), delivery_id)
    session.commit()
    log.info(
        "delivery replayed",
        extra={
            "organisation_id": row.organisation_id,
            "notification_id": row.id,
            "webhook_id": row.webhook_id,
            "by": principal.actor,
        },
    )
    return DeliveryOut.model_validate(row)
