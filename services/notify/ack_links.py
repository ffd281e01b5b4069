"""Links in notifications: signed acknowledgement and unsubscribe capabilities, and the manage link.

A signed link is a capability in an email or a card, so following it needs no login; each is bound to one alert
(or channel) of one organisation, expires, and is signed with MEWS_NOTIFY_LINK_SIGNING_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.notify.settings import NotifySettings
from services.notify.store.models import utcnow

# Acknowledgement links: a capability in an email, so no login is needed, bound to one alert and organisation.


@dataclass(frozen=True)
class AckClaim:
    """What a valid acknowledgement token grants: acknowledging this alert of this organisation."""

    alert_id: str
    organisation_id: str
    expires_at: datetime


_EXPIRY = re.compile(r"[0-9]{1,12}")
MAX_ACK_EXPIRY = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())


def _ack_mac(key: bytes, alert_id: str, organisation_id: str, expires: int) -> str:
    digest = hmac.new(key, f"ack|{alert_id}|{organisation_id}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_ack_token(key: str, alert_id: str, organisation_id: str, expires_at: datetime) -> str:
    """A URL-safe token letting its bearer acknowledge one alert of one organisation until it expires."""
    expires = int(expires_at.timestamp())
    return f"{alert_id}.{organisation_id}.{expires}.{_ack_mac(key.encode(), alert_id, organisation_id, expires)}"


def verify_ack_token(key: str, token: str, now: datetime | None = None) -> AckClaim | str:
    """The claim of a valid token, or the reason it is not valid."""
    parts = token.split(".")
    # ASCII digits only (str.isdigit also takes superscripts, which int() refuses), and at most a timestamp
    # that a datetime holds: even a validly signed expiry beyond it is malformed, not a crash.
    if len(parts) != 4 or not _EXPIRY.fullmatch(parts[2]) or int(parts[2]) > MAX_ACK_EXPIRY:
        return "malformed token"
    alert_id, organisation_id, expires_text, mac = parts
    expected = _ack_mac(key.encode(), alert_id, organisation_id, int(expires_text))
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return "bad signature"
    expires_at = datetime.fromtimestamp(int(expires_text), tz=UTC)
    if expires_at <= (now or utcnow()):
        return "expired"
    return AckClaim(alert_id, organisation_id, expires_at)


def ack_url(settings: NotifySettings, alert_id: str, organisation_id: str, now: datetime | None = None) -> str:
    """The acknowledgement link for an email, valid for the configured time."""
    expires_at = (now or utcnow()) + timedelta(seconds=settings.ack_link_ttl_seconds)
    token = sign_ack_token(settings.link_signing_key.get_secret_value(), alert_id, organisation_id, expires_at)
    return f"{settings.public_base_url.rstrip('/')}/v1/ack/{token}"


# The web console's subscription settings page: the one place the notifications' manage link is made from.
CONSOLE_SUBSCRIPTIONS_PATH = "/console/subscriptions"


def manage_url(settings: NotifySettings, organisation_id: str = "") -> str:
    """Where a recipient manages the organisation's subscriptions (emails, cards, admin notices): the console's
    page under the public base URL, or `MEWS_NOTIFY_MANAGE_URL` with `{organisation_id}` filled in."""
    if settings.manage_url:
        return settings.manage_url.replace("{organisation_id}", organisation_id)
    return f"{settings.public_base_url.rstrip('/')}{CONSOLE_SUBSCRIPTIONS_PATH}"


# Unsubscribe links: a capability in a notification, bound to one channel of one organisation, as the ack links.


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What a valid unsubscribe token grants: disabling this channel of this organisation."""

    channel_id: str
    organisation_id: str
    expires_at: datetime


def _unsubscribe_mac(key: bytes, channel_id: str, organisation_id: str, expires: int) -> str:
    # "unsubscribe|" keeps these apart from ack tokens: one never passes for the other.
    digest = hmac.new(key, f"unsubscribe|{channel_id}|{organisation_id}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_unsubscribe_token(key: str, channel_id: str, organisation_id: str, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    mac = _unsubscribe_mac(key.encode(), channel_id, organisation_id, expires)
    return f"{channel_id}.{organisation_id}.{expires}.{mac}"


def verify_unsubscribe_token(key: str, token: str, now: datetime | None = None) -> UnsubscribeClaim | str:
    """The claim of a valid token, or the reason it is not valid."""
    parts = token.split(".")
    if len(parts) != 4 or not _EXPIRY.fullmatch(parts[2]) or int(parts[2]) > MAX_ACK_EXPIRY:
        return "malformed token"
    channel_id, organisation_id, expires_text, mac = parts
    expected = _unsubscribe_mac(key.encode(), channel_id, organisation_id, int(expires_text))
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return "bad signature"
    expires_at = datetime.fromtimestamp(int(expires_text), tz=UTC)
    if expires_at <= (now or utcnow()):
        return "expired"
    return UnsubscribeClaim(channel_id, organisation_id, expires_at)


def unsubscribe_url(
    settings: NotifySettings, channel_id: str, organisation_id: str, now: datetime | None = None
) -> str:
    """The unsubscribe link of a channel's notifications, valid for the configured time."""
    expires_at = (now or utcnow()) + timedelta(seconds=settings.unsubscribe_link_ttl_seconds)
    token = sign_unsubscribe_token(
        settings.link_signing_key.get_secret_value(), channel_id, organisation_id, expires_at
    )
    return f"{settings.public_base_url.rstrip('/')}/v1/unsubscribe/{token}"
