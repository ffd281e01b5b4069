"""Channels: where an organisation's alerts go. Webhook secrets are shown once, at creation or rotation; a Teams or
Slack URL is itself the secret, so it is never shown again, only masked."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session, notify_settings
from services.notify.auth import Principal, organisation_of, tenant_admin, tenant_member
from services.notify.outbound import masked_url
from services.notify.settings import NotifySettings
from services.notify.store import channels
from services.notify.store.channels import SECRET_URL_KINDS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/channels", tags=["channels"])


Mode = Literal["immediate", "digest"]
MODE_HELP = "immediate, or digest: warnings wait for the digest (criticals are always immediate)"
Hour = Annotated[int, Field(ge=0, le=23)]
DELIVERY_FIELDS = ("digest_every", "min_severity", "quiet_from_hour", "quiet_until_hour", "timezone")


def _time_zone(name: str | None) -> str | None:
    if name is not None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Amsterdam)") from exc
    return name


class Delivery(BaseModel):
    """When a channel is told besides its mode: the lowest severity it takes, and quiet hours in its time zone."""

    model_config = ConfigDict(extra="forbid")
    digest_every: Literal["day", "week"] | None = Field(default=None, description="The digest's period")
    min_severity: Literal["warning", "critical"] | None = None
    quiet_from_hour: Hour | None = Field(default=None, description="Warnings wait from this local hour ...")
    quiet_until_hour: Hour | None = Field(default=None, description="... until this one (22 to 7 spans midnight)")
    timezone: Annotated[str | None, AfterValidator(_time_zone)] = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _quiet_hours_in_pairs(self) -> Delivery:
        if (self.quiet_from_hour is None) != (self.quiet_until_hour is None):
            raise ValueError("quiet_from_hour and quiet_until_hour go together")
        return self

    def columns(self) -> dict[str, object]:
        """The delivery columns the request set (quiet hours null: none)."""
        return {
            name: getattr(self, name)
            for name in DELIVERY_FIELDS
            if name in self.model_fields_set and (getattr(self, name) is not None or name.startswith("quiet"))
        }


class ChannelIn(Delivery):
    kind: Literal["email", "webhook", "teams", "slack"]
    target: str = Field(
        min_length=3,
        max_length=2000,
        description="An email address, or an https URL: a webhook's, a Teams Workflows webhook's "
        "or a Slack incoming webhook's",
    )
    language: Literal["nl", "en"] = "en"
    mode: Mode = Field(default="immediate", description=MODE_HELP)
    secret: str | None = Field(
        default=None, max_length=200, description="Webhook signing secret (whsec_...); generated when omitted"
    )


class ChannelPatch(Delivery):
    target: str | None = Field(default=None, min_length=3, max_length=2000)
    language: Literal["nl", "en"] | None = None
    mode: Mode | None = Field(default=None, description=MODE_HELP)
    enabled: bool | None = None


class ChannelOut(BaseModel):
    """A channel as the API shows it: never with its secret (a Teams or Slack URL masked)."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: Literal["email", "webhook", "teams", "slack"]
    target: str
    language: Literal["nl", "en"]
    mode: Mode
    digest_every: Literal["day", "week"]
    min_severity: Literal["warning", "critical"]
    quiet_from_hour: int | None
    quiet_until_hour: int | None
    timezone: str
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime

    @model_validator(mode="after")
    def _mask_secret_urls(self) -> ChannelOut:
        if self.kind in SECRET_URL_KINDS:
            self.target = masked_url(self.target)
        return self


class ChannelWithSecret(ChannelOut):
    secret: str | None = Field(description="The webhook signing secret; shown this once, never again")


def _target_rules(settings: NotifySettings) -> dict[str, bool]:
    return {"require_https": settings.require_https_webhooks, "allow_private": settings.allow_private_webhook_targets}


@router.get("", response_model=list[ChannelOut])
def list_channels(
    principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> list[ChannelOut]:
    """The organisation's channels."""
    return [ChannelOut.model_validate(c) for c in channels.list_channels(session, organisation_of(principal))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChannelWithSecret)
def create_channel(
    body: ChannelIn,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
    settings: NotifySettings = Depends(notify_settings),
) -> ChannelWithSecret:
    """Add a channel (admins); a webhook's URL is checked and its signing secret returned this once."""
    channel = channels.create_channel(
        session,
        organisation_of(principal),
        kind=body.kind,
        target=body.target,
        language=body.language,
        mode=body.mode,
        secret=body.secret,
        delivery=body.columns(),
        **_target_rules(settings),
    )
    session.commit()
    request.app.state.subscriptions_changed()
    log.info(
        "channel created",
        extra={
            "organisation_id": channel.organisation_id,
            "channel_id": channel.id,
            "kind": channel.kind,
            "by": principal.actor,
        },
    )
    return ChannelWithSecret(**ChannelOut.model_validate(channel).model_dump(), secret=channel.secret)


@router.get("/{channel_id}", response_model=ChannelOut)
def get_channel(
    channel_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> ChannelOut:
    """One channel."""
    return ChannelOut.model_validate(channels.get_channel(session, organisation_of(principal), channel_id))


@router.patch("/{channel_id}", response_model=ChannelOut)
def update_channel(
    channel_id: str,
    body: ChannelPatch,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
    settings: NotifySettings = Depends(notify_settings),
) -> ChannelOut:
    """Change a channel's target, language, mode, minimum severity, quiet hours or time zone, or enable it again
    (admins)."""
    channel = channels.update_channel(
        session,
        organisation_of(principal),
        channel_id,
        target=body.target,
        language=body.language,
        mode=body.mode,
        enabled=body.enabled,
        delivery=body.columns(),
        **_target_rules(settings),
    )
    session.commit()
    request.app.state.subscriptions_changed()
    return ChannelOut.model_validate(channel)


@router.post("/{channel_id}/rotate-secret", response_model=ChannelWithSecret)
def rotate_secret(
    channel_id: str, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> ChannelWithSecret:
    """Give a webhook channel a new signing secret, returned this once (admins)."""
    channel, secret = channels.rotate_webhook_secret(session, organisation_of(principal), channel_id)
    session.commit()
    log.info(
        "webhook secret rotated",
        extra={"organisation_id": channel.organisation_id, "channel_id": channel.id, "by": principal.actor},
    )
    return ChannelWithSecret(**ChannelOut.model_validate(channel).model_dump(), secret=secret)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(
    channel_id: str,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> None:
    """Remove a channel (admins)."""
    channels.delete_channel(session, organisation_of(principal), channel_id)
    session.commit()
    request.app.state.subscriptions_changed()
