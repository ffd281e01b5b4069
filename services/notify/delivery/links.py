"""Signed links in emails: acknowledge an alert with one click, without an API key.

The token is an HMAC-SHA256 over the alert, its organisation and an expiry, keyed by the link signing key;
the API verifies it with `verify_ack_token` before it acknowledges anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode


def _signature(key: str, alert_id: str, organisation_id: str, expires: int) -> str:
    message = f"ack|{alert_id}|{organisation_id}|{expires}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_ack_token(key: str, alert_id: str, organisation_id: str, expires_at: datetime) -> str:
    """A token `<expiry epoch>.<signature>` that acknowledges one alert of one organisation until it expires."""
    expires = int(expires_at.timestamp())
    return f"{expires}.{_signature(key, alert_id, organisation_id, expires)}"


def verify_ack_token(key: str, token: str, alert_id: str, organisation_id: str, now: datetime) -> str | None:
    """None when the token is valid for this alert and organisation now, else why it is not."""
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or not signature:
        return "malformed token"
    if not hmac.compare_digest(signature, _signature(key, alert_id, organisation_id, int(expires_text))):
        return "bad signature"
    if now.timestamp() >= int(expires_text):
        return "token expired"
    return None


def ack_url(base_url: str, key: str, alert_id: str, organisation_id: str, expires_at: datetime) -> str:
    """The link an email carries to acknowledge an alert: GET or POST /v1/alerts/{id}/ack?org=...&token=...."""
    query = urlencode({"org": organisation_id, "token": sign_ack_token(key, alert_id, organisation_id, expires_at)})
    return f"{base_url.rstrip('/')}/v1/alerts/{alert_id}/ack?{query}"


def manage_url(base_url: str, channel_id: str) -> str:
    """Where a recipient manages the subscriptions that send to this channel."""
    return f"{base_url.rstrip('/')}/v1/subscriptions?channel_id={channel_id}"
