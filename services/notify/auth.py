"""Who is calling: API-key and bootstrap-token authentication, roles and clearance, as FastAPI dependencies."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session, notify_settings
from services.notify.settings import NotifySettings
from services.notify.store.keys import find_active_key
from services.notify.store.models import ApiKey, Organisation, User
from shared.events import Classification
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
        return self.kind in ("ministry", "agency") and Classification(self.clearance).allows(Classification.GOVERNMENT)

    def cleared_for(self, classification: str) -> bool:
        return Classification(self.clearance).allows(classification)


def authenticate(
    session: Session, settings: NotifySettings, token: str, now: datetime | None = None
) -> Principal | None:
    """The principal a bearer token stands for, or None when it stands for nothing."""
    bootstrap = settings.bootstrap_admin_token
    if (
        bootstrap is not None
        and bootstrap.get_secret_value()
        and hmac.compare_digest(token.encode(), bootstrap.get_secret_value().encode())
    ):
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
    return Principal(
        organisation.id, key.role, organisation.clearance, organisation.kind, organisation.platform_admin, key.id, actor
    )


def principal_of_user(session: Session, user: User) -> Principal | None:
    """The principal of a user signed in to the console with an emailed link: their own role in their
    organisation (None once it is gone). No key stands behind it."""
    organisation = session.get(Organisation, user.organisation_id)
    if organisation is None:
        return None
    return Principal(
        organisation.id,
        user.role,
        organisation.clearance,
        organisation.kind,
        organisation.platform_admin,
        None,
        user.email,
    )


@answers(401, 429)
def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    session: Session = Depends(db_session),
    settings: NotifySettings = Depends(notify_settings),
) -> Principal:
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
