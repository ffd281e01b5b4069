"""Channels: email addresses and webhook URLs (signed webhooks, Teams and Slack) an organisation's alerts go to."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.outbound import check_webhook_target
from services.notify.store.errors import NotFound, Rejected
from services.notify.store.models import Channel

SECRET_URL_KINDS = ("teams", "slack")  # their URL is the secret: no signing secret, shown only masked
SECRET_SCHEME = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
# A plain address: no display name, no spaces, no line breaks (which would let a header be injected).
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def generate_webhook_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_SCHEME + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_refusal(secret: str) -> str | None:
    """Why a given signing secret is unusable, or None."""
    if not secret.startswith(SECRET_SCHEME):
        return f"secret must start with {SECRET_SCHEME}"
    try:
        raw = base64.b64decode(secret[len(SECRET_SCHEME) :], validate=True)
    except (binascii.Error, ValueError):
        return "secret must be base64 after whsec_"
    # The Standard Webhooks specification asks for 24 to 64 bytes.
    if not 24 <= len(raw) <= 64:
        return "secret must hold 24 to 64 bytes"
    return None


def target_refusal(kind: str, target: str, *, require_https: bool, allow_private: bool) -> str | None:
    """Why a channel target is unacceptable, or None."""
    if kind == "email":
        return None if _EMAIL.match(target) and len(target) <= 320 else "not a plain email address"
    verdict = check_webhook_target(target, require_https=require_https, allow_private=allow_private)
    return None if verdict.allowed else verdict.reason


def create_channel(
    session: Session,
    organisation_id: str,
    *,
    kind: str,
    target: str,
    language: str = "en",
    mode: str = "immediate",
    secret: str | None = None,
    require_https: bool = True,
    allow_private: bool = False,
    delivery: Mapping[str, object] | None = None,
) -> Channel:
    """Add a channel after checking its target; a webhook gets a fresh signing secret unless one is given."""
    target = target.strip()
    refusal = target_refusal(kind, target, require_https=require_https, allow_private=allow_private)
    if refusal:
        raise Rejected(f"target refused: {refusal}")
    if kind == "webhook":
        secret = secret or generate_webhook_secret()
        refusal = webhook_secret_refusal(secret)
        if refusal:
            raise Rejected(refusal)
    elif secret:
        raise Rejected("only webhook channels take a secret")
    channel = Channel(
        organisation_id=organisation_id,
        kind=kind,
        target=target.lower() if kind == "email" else target,
        language=language,
        mode=mode,
        secret=secret if kind == "webhook" else None,
        **(delivery or {}),
    )
    session.add(channel)
    session.flush()
    return channel


def list_channels(session: Session, organisation_id: str) -> list[Channel]:
    """An organisation's channels, oldest first."""
    return list(
        session.scalars(
            select(Channel).where(Channel.organisation_id == organisation_id).order_by(Channel.created_at, Channel.id)
        )
    )


def get_channel(session: Session, organisation_id: str, channel_id: str) -> Channel:
    """One channel of the organisation."""
    channel = session.get(Channel, channel_id)
    if channel is None or channel.organisation_id != organisation_id:
        raise NotFound("channel not found")
    return channel


def update_channel(
    session: Session,
    organisation_id: str,
    channel_id: str,
    *,
    target: str | None = None,
    language: str | None = None,
    mode: str | None = None,
    enabled: bool | None = None,
    require_https: bool = True,
    allow_private: bool = False,
    delivery: Mapping[str, object] | None = None,
) -> Channel:
    """Change a channel; re-enabling it clears its failure count and the reason it was disabled.

    `delivery`: the delivery columns to set (min_severity, quiet_from_hour, quiet_until_hour, timezone)."""
    channel = get_channel(session, organisation_id, channel_id)
    if target is not None:
        target = target.strip()
        refusal = target_refusal(channel.kind, target, require_https=require_https, allow_private=allow_private)
        if refusal:
            raise Rejected(f"target refused: {refusal}")
        channel.target = target.lower() if channel.kind == "email" else target
    if language is not None:
        channel.language = language
    if mode is not None:
        channel.mode = mode
    for name, value in (delivery or {}).items():
        setattr(channel, name, value)
    if enabled is True and not channel.enabled:
        channel.enabled, channel.disabled_reason, channel.consecutive_failures = True, None, 0
    elif enabled is False and channel.enabled:
        channel.enabled, channel.disabled_reason = False, "disabled by the organisation"
    session.flush()
    return channel


def rotate_webhook_secret(session: Session, organisation_id: str, channel_id: str) -> tuple[Channel, str]:
    """Give a webhook channel a new signing secret; returns it once."""
    channel = get_channel(session, organisation_id, channel_id)
    if channel.kind != "webhook":
        raise Rejected("only webhook channels have a secret")
    channel.secret = generate_webhook_secret()
    session.flush()
    return channel, channel.secret


def delete_channel(session: Session, organisation_id: str, channel_id: str) -> None:
    """Remove a channel (its subscriptions stay, without it; its outbox rows go with it)."""
    session.delete(get_channel(session, organisation_id, channel_id))
    session.flush()
