"""Who is calling: API-key and bootstrap-token authentication, roles, clearance, and signed acknowledgement links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session, notify_settings
from services.notify.settings import NotifySettings
from services.notify.store.keys import find_active_key
from services.notify.store.models import CLEARANCES, ApiKey, Organisation, User, utcnow
from shared.problems import answers
from shared.throttle import auth_throttle

BOOTSTRAP = "bootstrap"
_bearer = HTTPBearer(auto_error=False, description="An API key (mews_...) or the platform bootstrap token")


@dataclass(frozen=True)
class Principal:
    """The caller: its organisation (none for the bootstrap token), role, clearance and where it came from."""

    organisation_id: str | None
    role: str
    clearance: str
    kind: str
    platform_admin: bool
    key_id: str | None
    actor: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_create_organisations(self) -> bool:
        return self.key_id == BOOTSTRAP or (self.platform_admin and self.is_admin)

    @property
    def may_see_exposure(self) -> bool:
        """Cross-organisation exposure is government information: ministries and agencies cleared for it."""
        return self.kind in ("ministry", "agency") and self.clearance == "government"

    def cleared_for(self, classification: str) -> bool:
        return CLEARANCES.index(classification) <= CLEARANCES.index(self.clearance)


def authenticate(session: Session, settings: NotifySettings, token: str,
                 now: datetime | None = None) -> Principal | None:
    """The principal a bearer token stands for, or None when it stands for nothing."""
    bootstrap = settings.bootstrap_admin_token
    if bootstrap is not None and bootstrap.get_secret_value() and hmac.compare_digest(
            token.encode(), bootstrap.get_secret_value().encode()):
        return Principal(None, "admin", "public", "platform", True, BOOTSTRAP, "bootstrap-token")
    key = find_active_key(session, token, now)
    return principal_of_key(session, key) if key is not None else None


def principal_of_key(session: Session, key: ApiKey) -> Principal | None:
    """The principal an active key stands for (None once its organisation is gone): the API's bearer tokens and
    the console's sessions, which remember the key they signed in with, resolve the same way."""
    if key.revoked_at is not None:
        return None
    organisation = session.get(Organisation, key.organisation_id)
    if organisation is None:
        return None
    user = session.get(User, key.user_id) if key.user_id else None
    actor = user.email if user is not None else f"api-key:{key.name or key.id}"
    return Principal(organisation.id, key.role, organisation.clearance, organisation.kind,
                     organisation.platform_admin, key.id, actor)


def principal_of_user(session: Session, user: User) -> Principal | None:
    """The principal of a user signed in to the console with an emailed link: their own role in their
    organisation (None once it is gone). No key stands behind it."""
    organisation = session.get(Organisation, user.organisation_id)
    if organisation is None:
        return None
    return Principal(organisation.id, user.role, organisation.clearance, organisation.kind,
                     organisation.platform_admin, None, user.email)


@answers(401, 429)
def current_principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
                      session: Session = Depends(db_session),
                      settings: NotifySettings = Depends(notify_settings)) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401 (429 after too many failures)."""
    principal = authenticate(session, settings, credentials.credentials) if credentials else None
    if principal is None:
        auth_throttle(request).refuse(request, credentials.credentials if credentials else None)
    session.commit()  # keeps the key's last_used_at
    return principal


@answers(403)
def tenant_member(principal: Principal = Depends(current_principal)) -> Principal:
    """FastAPI dependency: a caller that belongs to an organisation (any role)."""
    if principal.organisation_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the bootstrap token may only create organisations")
    return principal


@answers(403)
def tenant_admin(principal: Principal = Depends(tenant_member)) -> Principal:
    """FastAPI dependency: an administrator of the caller's organisation."""
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin role")
    return principal


@answers(403)
def organisation_creator(principal: Principal = Depends(current_principal)) -> Principal:
    """FastAPI dependency: the bootstrap token or an admin key of a platform organisation."""
    if not principal.may_create_organisations:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only platform administrators manage organisations")
    return principal


def organisation_of(principal: Principal) -> str:
    """The caller's organisation id (tenant dependencies guarantee there is one)."""
    if principal.organisation_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "no organisation")
    return principal.organisation_id


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
    page under the public base URL, or `MEWS_MANAGE_URL` with `{organisation_id}` filled in."""
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


def unsubscribe_url(settings: NotifySettings, channel_id: str, organisation_id: str,
                    now: datetime | None = None) -> str:
    """The unsubscribe link of a channel's notifications, valid for the configured time."""
    expires_at = (now or utcnow()) + timedelta(seconds=settings.unsubscribe_link_ttl_seconds)
    token = sign_unsubscribe_token(settings.link_signing_key.get_secret_value(), channel_id, organisation_id,
                                   expires_at)
    return f"{settings.public_base_url.rstrip('/')}/v1/unsubscribe/{token}"
