"""Subscriptions: a material or a product, a minimum severity, and the channels alerts go to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import Principal, organisation_of, tenant_admin, tenant_member
from services.notify.store import subscriptions
from services.notify.store.models import Subscription
from shared.events import MaterialId

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
Severity = Literal["warning", "critical"]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    material: MaterialId | None = None
    product_id: str | None = None
    min_severity: Severity = "warning"
    channel_ids: list[str] = Field(min_length=1, max_length=50)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_severity: Severity | None = None
    channel_ids: list[str] | None = Field(default=None, min_length=1, max_length=50)


class SubscriptionOut(BaseModel):
    id: str
    material: str | None
    product_id: str | None
    min_severity: Severity
    channel_ids: list[str]
    created_at: datetime

    @classmethod
    def of(cls, row: Subscription) -> SubscriptionOut:
        # The column holds a severity (a check constraint says so); validated as one, not merely assumed.
        return cls.model_validate(
            {
                "id": row.id,
                "material": row.material,
                "product_id": row.product_id,
                "min_severity": row.min_severity,
                "channel_ids": [c.id for c in row.channels],
                "created_at": row.created_at,
            }
        )


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(
    principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> list[SubscriptionOut]:
    """The organisation's subscriptions."""
    return [SubscriptionOut.of(s) for s in subscriptions.list_subscriptions(session, organisation_of(principal))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SubscriptionOut)
def create_subscription(
    body: SubscriptionIn,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> SubscriptionOut:
    """Subscribe to a material or to a product's BOM (admins)."""
    row = subscriptions.create_subscription(
        session,
        organisation_of(principal),
        material=body.material,
        product_id=body.product_id,
        min_severity=body.min_severity,
        channel_ids=body.channel_ids,
    )
    session.commit()
    request.app.state.subscriptions_changed()
    return SubscriptionOut.of(row)


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(
    subscription_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> SubscriptionOut:
    """One subscription."""
    return SubscriptionOut.of(subscriptions.get_subscription(session, organisation_of(principal), subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionOut)
def update_subscription(
    subscription_id: str,
    body: SubscriptionPatch,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> SubscriptionOut:
    """Change a subscription's minimum severity or channels (admins)."""
    row = subscriptions.update_subscription(
        session,
        organisation_of(principal),
        subscription_id,
        min_severity=body.min_severity,
        channel_ids=body.channel_ids,
    )
    session.commit()
    request.app.state.subscriptions_changed()
    return SubscriptionOut.of(row)


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(
    subscription_id: str,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> None:
    """Remove a subscription (admins)."""
    subscriptions.delete_subscription(session, organisation_of(principal), subscription_id)
    session.commit()
    request.app.state.subscriptions_changed()
