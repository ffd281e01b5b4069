"""Organisations and their users."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.notify.store.errors import Conflict, NotFound
from services.notify.store.models import Organisation, User


def create_organisation(
    session: Session, *, name: str, kind: str, clearance: str = "public", platform_admin: bool = False
) -> Organisation:
    """Add an organisation (the caller checks it may)."""
    organisation = Organisation(name=name, kind=kind, clearance=clearance, platform_admin=platform_admin)
    session.add(organisation)
    session.flush()
    return organisation


def get_organisation(session: Session, organisation_id: str) -> Organisation:
    """One organisation by id."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("organisation not found")
    return organisation


def list_organisations(session: Session) -> list[Organisation]:
    """Every organisation, by name (platform administrators only)."""
    return list(session.scalars(select(Organisation).order_by(Organisation.name, Organisation.id)))


def count_organisations(session: Session) -> int:
    """How many organisations exist."""
    return session.scalar(select(func.count()).select_from(Organisation)) or 0


def create_user(
    session: Session, organisation_id: str, *, email: str, name: str = "", role: str = "member", language: str = "en"
) -> User:
    """Add a user to an organisation; an email address is unique within it."""
    user = User(organisation_id=organisation_id, email=email.strip().lower(), name=name, role=role, language=language)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise Conflict(f"a user with email {user.email} already exists") from exc
    return user


def list_users(session: Session, organisation_id: str) -> list[User]:
    """An organisation's users, by email."""
    return list(session.scalars(select(User).where(User.organisation_id == organisation_id).order_by(User.email)))


def list_admins(session: Session, organisation_id: str) -> list[User]:
    """An organisation's administrators (who are told when a channel is disabled)."""
    return [u for u in list_users(session, organisation_id) if u.role == "admin"]


def get_user(session: Session, organisation_id: str, user_id: str) -> User:
    """One user of the organisation."""
    user = session.get(User, user_id)
    if user is None or user.organisation_id != organisation_id:
        raise NotFound("user not found")
    return user


def update_user(
    session: Session,
    organisation_id: str,
    user_id: str,
    *,
    name: str | None = None,
    role: str | None = None,
    language: str | None = None,
) -> User:
    """Change a user's name, role or language."""
    user = get_user(session, organisation_id, user_id)
    if name is not None:
        user.name = name
    if role is not None:
        user.role = role
    if language is not None:
        user.language = language
    session.flush()
    return user


def delete_user(session: Session, organisation_id: str, user_id: str) -> None:
    """Remove a user; their API keys stay (they belong to the organisation) but lose the link."""
    session.delete(get_user(session, organisation_id, user_id))
    session.flush()
