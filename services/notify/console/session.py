"""Console sessions: a signed cookie naming the API key or the user that signed in, and the CSRF token every form
carries.

The cookie holds the key's id, never the key: revoking the key ends every session signed in with it. A user who
signed in with an emailed link is named `user:<id>`: removing the user ends their sessions. A visitor who
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
USER = "user:"
_SUBJECT = re.compile(r"(user:)?[0-9a-f-]{0,36}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class ConsoleSession:
    """Who signed in (an API key's id, or `user:` and a user's id; empty before sign-in), the session's nonce and
    when it ends."""

    subject: str
    nonce: str
    expires_at: datetime

    @property
    def signed_in(self) -> bool:
        return bool(self.subject)

    @property
    def key_id(self) -> str:
        """The API key that signed in ("" for a user's session)."""
        return "" if self.subject.startswith(USER) else self.subject

    @property
    def user_id(self) -> str:
        """The user who signed in with an emailed link ("" for a key's session)."""
        return self.subject.removeprefix(USER) if self.subject.startswith(USER) else ""


def _mac(key: str, label: str, text: str) -> str:
    # A label per use keeps a session cookie from ever passing for a CSRF token, or for a link token.
    digest = hmac.new(key.encode(), f"console-{label}|{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_session(subject: str, ttl: timedelta, now: datetime | None = None) -> ConsoleSession:
    """A session for `subject` (a key's id, `user:<id>`, or empty: not signed in) with a fresh nonce."""
    return ConsoleSession(subject, secrets.token_urlsafe(24), (now or utcnow()) + ttl)


def encode_session(key: str, session: ConsoleSession) -> str:
    """The cookie value: the fields and their signature."""
    body = f"{session.subject}.{session.nonce}.{int(session.expires_at.timestamp())}"
    return f"{body}.{_mac(key, 'session', body)}"


def decode_session(key: str, value: str | None, now: datetime | None = None) -> ConsoleSession | None:
    """The session a cookie carries, or None when it is missing, forged, malformed or expired."""
    parts = (value or "").split(".")
    if len(parts) != 4:
        return None
    subject, nonce, expires, mac = parts
    if not (_SUBJECT.fullmatch(subject) and _NONCE.fullmatch(nonce) and _EXPIRES.fullmatch(expires)):
        return None
    if not hmac.compare_digest(mac.encode(), _mac(key, "session", f"{subject}.{nonce}.{expires}").encode()):
        return None
    expires_at = datetime.fromtimestamp(int(expires), tz=(now or utcnow()).tzinfo)
    if expires_at <= (now or utcnow()):
        return None
    return ConsoleSession(subject, nonce, expires_at)


def csrf_token(key: str, session: ConsoleSession) -> str:
    """The token the session's forms carry; it changes with the session."""
    return _mac(key, "csrf", session.nonce)


def csrf_valid(key: str, session: ConsoleSession, presented: str | None) -> bool:
    """Whether a form's token belongs to this session."""
    return bool(presented) and hmac.compare_digest(str(presented).encode(), csrf_token(key, session).encode())
