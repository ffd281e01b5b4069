"""Unsubscribing by a signed link in a notification: GET asks, POST turns the channel off.

Mail scanners fetch every link in a message, so following the link only shows a confirmation page; its button
disables the channel (no notification goes to it any more, pending ones are cancelled). An administrator turns it
on again with `PATCH /v1/channels/{id}` `{"enabled": true}`.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from services.notify.ack_links import UnsubscribeClaim, verify_unsubscribe_token
from services.notify.api.deps import db_session, notify_settings
from services.notify.delivery.metrics import UNSUBSCRIBES
from services.notify.settings import NotifySettings
from services.notify.store.models import Channel

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["subscriptions"])

UNSUBSCRIBED = "unsubscribed by the recipient (link)"

_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>mews</title></head>
<body><h1>{title}</h1><p>{target}</p><p>{body}</p>{form}</body></html>"""
_WORDS = {
    "en": {
        "ask": "Unsubscribe?",
        "done": "Unsubscribed",
        "ask_body": "This {what} gets no more mews alerts of your organisation once you confirm.",
        "done_body": "This {what} gets no more mews alerts. An administrator of your organisation can turn it "
        "on again.",
        "button": "Unsubscribe",
        "address": "address",
        "channel": "channel",
    },
    "nl": {
        "ask": "Afmelden?",
        "done": "Afgemeld",
        "ask_body": "Na uw bevestiging krijgt dit {what} geen meldingen van mews voor uw organisatie meer.",
        "done_body": "Dit {what} krijgt geen meldingen van mews meer. Een beheerder van uw organisatie kan het "
        "weer inschakelen.",
        "button": "Afmelden",
        "address": "adres",
        "channel": "kanaal",
    },
}
_LINK_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "The link is malformed, forged, expired or names nothing"}
}


def _claimed_channel(token: str, session: Session, settings: NotifySettings) -> Channel:
    """The channel a signed link names; 403 when the link is invalid, expired or points at nothing."""
    claim = verify_unsubscribe_token(settings.link_signing_key.get_secret_value(), token)
    if not isinstance(claim, UnsubscribeClaim):
        log.info("unsubscribe link refused", extra={"reason": claim})
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"link refused: {claim}")
    channel = session.get(Channel, claim.channel_id)
    if channel is None or channel.organisation_id != claim.organisation_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "link refused: channel no longer exists")
    return channel


def _page(channel: Channel, done: bool) -> HTMLResponse:
    words = _WORDS.get(channel.language, _WORDS["en"])
    # A chat webhook's URL is its secret: only an email address is shown.
    target = html.escape(channel.target) if channel.kind == "email" else html.escape(channel.kind)
    form = "" if done else f'<form method="post"><button type="submit">{words["button"]}</button></form>'
    return HTMLResponse(
        _PAGE.format(
            lang=channel.language,
            title=words["done" if done else "ask"],
            target=target,
            body=words["done_body" if done else "ask_body"].format(
                what=words["address" if channel.kind == "email" else "channel"]
            ),
            form=form,
        )
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, responses=_LINK_REFUSED)
def confirm_unsubscribe(
    token: str, session: Session = Depends(db_session), settings: NotifySettings = Depends(notify_settings)
) -> HTMLResponse:
    """Show which channel a signed unsubscribe link names, with a button to turn it off; a bad link answers 403."""
    return _page(_claimed_channel(token, session, settings), done=False)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, responses=_LINK_REFUSED)
def unsubscribe(
    token: str, session: Session = Depends(db_session), settings: NotifySettings = Depends(notify_settings)
) -> HTMLResponse:
    """Turn off the channel a signed unsubscribe link names (again: still off); a bad link answers 403."""
    channel = _claimed_channel(token, session, settings)
    if channel.enabled:
        channel.enabled, channel.disabled_reason = False, UNSUBSCRIBED
        session.commit()
        UNSUBSCRIBES.labels(channel.kind).inc()
        log.info(
            "channel unsubscribed",
            extra={"organisation_id": channel.organisation_id, "channel_id": channel.id, "via": "link"},
        )
    return _page(channel, done=True)
