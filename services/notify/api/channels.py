"""Channels: where an organisation's alerts go. Webhook secrets are shown once, at creation or rotation; a Teams or
Slack URL is itself the secret, so it is never shown again, only masked."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from services.notify.access import Principal, organisation_of, tenant_admin, tenant_member
from services.notify.api.deps import db_session, notify_settings
from services.notify.outbound import masked_url
from services.notify.settings import NotifySettings
from services.notify.store import channels
from services.notify.store.channels import SECRET_URL_KINDS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/channels", tags=["channels"])


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["email", "webhook", "teams", "slack"]
    target: str = Field(min_length=3, max_length=2000,
                        description="An email address, or an https URL: a webhook's, a Teams Workflows webhook's "
                                    "or a Slack incoming webhook's")
    language: Literal["nl", "en"] = "en"
    mode: Literal["immediate", "digest"] = "immediate"
    secret: str | None = Field(default=None, max_length=200,
                               description="Webhook signing secret (whsec_...); generated when omitted")


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str | None = Field(default=None, min_length=3, max_length=2000)
    language: Literal["nl", "en"] | None = None
    mode: Literal["immediate", "digest"] | None = None
    enabled: bool | None = None


class ChannelOut(BaseModel):
    """A channel as the API shows it: never with its secret (a Teams or Slack URL masked)."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: Literal["email", "webhook", "teams", "slack"]
    target: str
    language: Literal["nl", "en"]
    mode: Literal["immediate", "digest"]
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
    return {"require_https": settings.require_https_webhooks,
            "allow_private": settings.allow_private_webhook_targets}


@router.get("", response_model=list[ChannelOut])
def list_channels(principal: Principal = Depends(tenant_member),
                  session: Session = Depends(db_session)) -> list[ChannelOut]:
    """The organisation's channels."""
    return [ChannelOut.model_validate(c) for c in channels.list_channels(session, organisation_of(principal))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChannelWithSecret)
def create_channel(body: ChannelIn, request: Request, principal: Principal = Depends(tenant_admin),
                   session: Session = Depends(db_session),
                   settings: NotifySettings = Depends(notify_settings)) -> ChannelWithSecret:
    """Add a channel (admins); a webhook's URL is checked and its signing secret returned this once."""
    channel = channels.create_channel(session, organisation_of(principal), kind=body.kind, target=body.target,
                                      language=body.language, mode=body.mode, secret=body.secret,
                                      **_target_rules(settings))
    session.commit()
    request.app.state.subscriptions_changed()
    log.info("channel created", extra={"organisation_id": channel.organisation_id, "channel_id": channel.id,
                                       "kind": channel.kind, "by": principal.actor})
    return ChannelWithSecret(**ChannelOut.model_validate(channel).model_dump(), secret=channel.secret)


@router.get("/{channel_id}", response_model=ChannelOut)
def get_channel(channel_id: str, principal: Principal = Depends(tenant_member),
                session: Session = Depends(db_session)) -> ChannelOut:
    """One channel."""
    return ChannelOut.model_validate(channels.get_channel(session, organisation_of(principal), channel_id))


@router.patch("/{channel_id}", response_model=ChannelOut)
def update_channel(channel_id: str, body: ChannelPatch, request: Request,
                   principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session),
                   settings: NotifySettings = Depends(notify_settings)) -> ChannelOut:
    """Change a channel's target, language or mode, or enable it again (admins)."""
    channel = channels.update_channel(session, organisation_of(principal), channel_id, target=body.target,
                                      language=body.language, mode=body.mode, enabled=body.enabled,
                                      **_target_rules(settings))
    session.commit()
    request.app.state.subscriptions_changed()
    return ChannelOut.model_validate(channel)


@router.post("/{channel_id}/rotate-secret", response_model=ChannelWithSecret)
def rotate_secret(channel_id: str, principal: Principal = Depends(tenant_admin),
                  session: Session = Depends(db_session)) -> ChannelWithSecret:
    """Give a webhook channel a new signing secret, returned this once (admins)."""
    channel, secret = channels.rotate_webhook_secret(session, organisation_of(principal), channel_id)
    session.commit()
    log.info("webhook secret rotated", extra={"organisation_id": channel.organisation_id, "channel_id": channel.id,
                                              "by": principal.actor})
    return ChannelWithSecret(**ChannelOut.model_validate(channel).model_dump(), secret=secret)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(channel_id: str, request: Request, principal: Principal = Depends(tenant_admin),
                   session: Session = Depends(db_session)) -> None:
    """Remove a channel (admins)."""
    channels.delete_channel(session, organisation_of(principal), channel_id)
    session.commit()
    request.app.state.subscriptions_changed()
