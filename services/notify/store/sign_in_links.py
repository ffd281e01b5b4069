"""Emailed one-time sign-in links of the console: a random token, kept as its SHA-256, valid a short time and
usable once (redeeming is one conditional UPDATE, so two tabs or replicas cannot both use a link)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from services.notify.store.keys import hash_key
from services.notify.store.models import Organisation, SignInLink, User

# Links are kept this long after they expire (for an audit of recent sign-ins), then removed when others are issued.
KEEP_EXPIRED = timedelta(days=1)


@dataclass(frozen=True)
class IssuedLink:
    """A link for one user of one organisation, with its token (never stored, only mailed)."""

    user: User
    organisation: Organisation
    token: str


def issue_sign_in_links(session: Session, email: str, ttl: timedelta, now: datetime) -> list[IssuedLink]:
    """A link for every user with this address (one per organisation they belong to); none for an unknown one."""
    session.execute(delete(SignInLink).where(SignInLink.expires_at < now - KEEP_EXPIRED))
    rows = session.execute(
        select(User, Organisation)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(func.lower(User.email) == email.strip().lower())
        .order_by(Organisation.name)
    ).all()
    issued = []
    for user, organisation in rows:
        token = secrets.token_urlsafe(32)
        session.add(SignInLink(user_id=user.id, token_hash=hash_key(token), created_at=now, expires_at=now + ttl))
        issued.append(IssuedLink(user, organisation, token))
    session.flush()
    return issued


def _usable(token: str, now: datetime):  # the WHERE clause of a link that may still be used
    return (SignInLink.token_hash == hash_key(token), SignInLink.used_at.is_(None), SignInLink.expires_at > now)


def find_usable_link(session: Session, token: str, now: datetime) -> User | None:
    """The user a link would sign in, without using it (the confirmation page); None when used or expired."""
    return session.scalars(
        select(User).join(SignInLink, SignInLink.user_id == User.id).where(*_usable(token, now))
    ).first()


def redeem_sign_in_link(session: Session, token: str, now: datetime) -> User | None:
    """Use a link: the user it signs in, or None when it is unknown, used or expired. The caller commits."""
    link_id = session.scalars(select(SignInLink.id).where(*_usable(token, now))).first()
    if link_id is None:
        return None
    # Conditional on the link still being unused: of two redeemers racing, the row lock lets one through.
    taken = session.execute(
        update(SignInLink).where(SignInLink.id == link_id, *_usable(token, now)).values(used_at=now)
    )
    if cast("CursorResult[Any]", taken).rowcount != 1:  # an UPDATE's result is a cursor result
        return None
    link = session.get(SignInLink, link_id)
    return session.get(User, link.user_id) if link is not None else None
