"""Subscriptions: which materials (directly or through a product) an organisation wants alerts about, and where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.notify.store.channels import get_channel
from services.notify.store.errors import NotFound, Rejected
from services.notify.store.models import Channel, Subscription
from services.notify.store.products import get_product


def _own_channels(session: Session, organisation_id: str, channel_ids: Sequence[str]) -> list[Channel]:
    if not channel_ids:
        raise Rejected("a subscription needs at least one channel")
    try:
        return [get_channel(session, organisation_id, cid) for cid in dict.fromkeys(channel_ids)]
    except NotFound as exc:
        raise Rejected("unknown channel id") from exc


def create_subscription(
    session: Session,
    organisation_id: str,
    *,
    material: str | None = None,
    product_id: str | None = None,
    min_severity: str = "warning",
    channel_ids: Sequence[str],
) -> Subscription:
    """Subscribe to a material or a product's BOM, with the organisation's own channels only."""
    if (material is None) == (product_id is None):
        raise Rejected("give exactly one of material and product_id")
    if product_id is not None:
        try:
            get_product(session, organisation_id, product_id)
        except NotFound as exc:
            raise Rejected("unknown product id") from exc
    subscription = Subscription(
        organisation_id=organisation_id,
        material=material,
        product_id=product_id,
        min_severity=min_severity,
        channels=_own_channels(session, organisation_id, channel_ids),
    )
    session.add(subscription)
    session.flush()
    return subscription


def list_subscriptions(session: Session, organisation_id: str) -> list[Subscription]:
    """An organisation's subscriptions with their channels, oldest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.organisation_id == organisation_id)
            .options(selectinload(Subscription.channels))
            .order_by(Subscription.created_at, Subscription.id)
        )
    )


def get_subscription(session: Session, organisation_id: str, subscription_id: str) -> Subscription:
    """One subscription of the organisation."""
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or subscription.organisation_id != organisation_id:
        raise NotFound("subscription not found")
    return subscription


def update_subscription(
    session: Session,
    organisation_id: str,
    subscription_id: str,
    *,
    min_severity: str | None = None,
    channel_ids: Sequence[str] | None = None,
) -> Subscription:
    """Change a subscription's minimum severity or channels (what it watches is fixed: make a new one)."""
    subscription = get_subscription(session, organisation_id, subscription_id)
    if min_severity is not None:
        subscription.min_severity = min_severity
    if channel_ids is not None:
        subscription.channels = _own_channels(session, organisation_id, channel_ids)
    session.flush()
    return subscription


def delete_subscription(session: Session, organisation_id: str, subscription_id: str) -> None:
    """Remove a subscription."""
    session.delete(get_subscription(session, organisation_id, subscription_id))
    session.flush()
