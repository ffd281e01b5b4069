"""API keys: generated once, shown once, stored as their hash_key (SHA-256) and found by an 8-character prefix."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store.errors import NotFound
from services.notify.store.models import ApiKey, utcnow
from shared.service_keys import hash_key

KEY_SCHEME = "mews_"  # recognisable by secret scanners
PREFIX_LENGTH = 8
# Writing last_used_at on every request would turn reads into writes; once a minute is enough to audit.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_prefix(plaintext: str) -> str:
    """The lookup prefix: the first characters of the random part."""
    body = plaintext[len(KEY_SCHEME) :] if plaintext.startswith(KEY_SCHEME) else plaintext
    return body[:PREFIX_LENGTH]


def generate_key() -> str:
    """A new random key (240 bits)."""
    return KEY_SCHEME + secrets.token_urlsafe(30)


def issue_api_key(
    session: Session, organisation_id: str, *, name: str, role: str = "member", user_id: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never available again."""
    plaintext = generate_key()
    key = ApiKey(
        organisation_id=organisation_id,
        user_id=user_id,
        name=name,
        role=role,
        prefix=key_prefix(plaintext),
        key_hash=hash_key(plaintext),
    )
    session.add(key)
    session.flush()
    return key, plaintext


def find_active_key(session: Session, plaintext: str, now: datetime | None = None) -> ApiKey | None:
    """The unrevoked key matching a presented secret, or None; records when it was last used."""
    if not plaintext.startswith(KEY_SCHEME) or len(plaintext) < len(KEY_SCHEME) + PREFIX_LENGTH:
        return None
    digest = hash_key(plaintext)
    now = now or utcnow()
    for key in session.scalars(
        select(ApiKey).where(ApiKey.prefix == key_prefix(plaintext), ApiKey.revoked_at.is_(None))
    ):
        if hmac.compare_digest(key.key_hash, digest):
            if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
                key.last_used_at = now
            return key
    return None


def list_api_keys(session: Session, organisation_id: str) -> list[ApiKey]:
    """An organisation's keys, revoked ones included, newest first."""
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.organisation_id == organisation_id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
    )


def revoke_api_key(session: Session, organisation_id: str, key_id: str, now: datetime | None = None) -> ApiKey:
    """Revoke a key of the organisation; revoking twice keeps the first time."""
    key = session.get(ApiKey, key_id)
    if key is None or key.organisation_id != organisation_id:
        raise NotFound("API key not found")
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
    session.flush()
    return key
