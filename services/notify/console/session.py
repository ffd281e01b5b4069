"""Console sessions: a signed cookie naming the API key that signed in, and the CSRF token every form carries.

The cookie holds the key's id, never the key: revoking the key ends every session signed in with it. A visitor who
has not signed in gets a session with no key, so the sign-in form has a CSRF token too; signing in starts a new
session (a fresh nonce), so a session fixed before sign-in is worth nothing after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notify.store.models import utcnow

COOKIE = "mews_console"
LANGUAGE_COOKIE = "mews_console_lang"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_KEY_ID = re.compile(r"[0-9a-f-]{0,36}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class ConsoleSession:
    """Who signed in (the API key's id, empty before sign-in), the session's nonce and when it ends."""

    key_id: str
    nonce: str
    expires_at: datetime

    @property
    def signed_in(self) -> bool:
        return bool(self.key_id)


def _mac(key: str, label: str, text: str) -> str:
    # A label per use keeps a session cookie from ever passing for a CSRF token, or for a link token.
    digest = hmac.new(key.encode(), f"console-{label}|{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_session(key_id: str, ttl: timedelta, now: datetime | None = None) -> ConsoleSession:
    """A session for `key_id` (empty: not signed in) with a fresh nonce."""
    return ConsoleSession(key_id, secrets.token_urlsafe(24), (now or utcnow()) + ttl)


def encode_session(key: str, session: ConsoleSession) -> str:
    """The cookie value: the fields and their signature."""
    body = f"{session.key_id}.{session.nonce}.{int(session.expires_at.timestamp())}"
    return f"{body}.{_mac(key, 'session', body)}"


def decode_session(key: str, value: str | None, now: datetime | None = None) -> ConsoleSession | None:
    """The session a cookie carries, or None when it is missing, forged, malformed or expired."""
    parts = (value or "").split(".")
    if len(parts) != 4:
        return None
    key_id, nonce, expires, mac = parts
    if not (_KEY_ID.fullmatch(key_id) and _NONCE.fullmatch(nonce) and _EXPIRES.fullmatch(expires)):
        return None
    if not hmac.compare_digest(mac.encode(), _mac(key, "session", f"{key_id}.{nonce}.{expires}").encode()):
        return None
    expires_at = datetime.fromtimestamp(int(expires), tz=(now or utcnow()).tzinfo)
    if expires_at <= (now or utcnow()):
        return None
    return ConsoleSession(key_id, nonce, expires_at)


def csrf_token(key: str, session: ConsoleSession) -> str:
    """The token the session's forms carry; it changes with the session."""
    return _mac(key, "csrf", session.nonce)


def csrf_valid(key: str, session: ConsoleSession, presented: str | None) -> bool:
    """Whether a form's token belongs to this session."""
    return bool(presented) and hmac.compare_digest(str(presented).encode(), csrf_token(key, session).encode())
