"""Organisations (platform administrators), and an organisation's own users and API keys (its administrators)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import (
    Principal,
    current_principal,
    organisation_creator,
    organisation_of,
    tenant_admin,
    tenant_member,
)
from services.notify.store import keys, organisations
from services.notify.store.errors import NotFound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["organisations"])

Kind = Literal["company", "ministry", "agency"]
Clearance = Literal["public", "restricted", "government"]
Role = Literal["admin", "member"]
Language = Literal["nl", "en"]


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: Kind
    clearance: Clearance
    platform_admin: bool
    created_at: datetime


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    clearance: Clearance = "public"
    platform_admin: bool = False
    admin_email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    admin_name: str = Field(default="", max_length=200)
    admin_language: Language = "en"


class OrganisationCreated(BaseModel):
    organisation: OrganisationOut
    admin_user_id: str | None
    api_key: str = Field(description="The first admin key; shown once, never again")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(default="", max_length=200)
    role: Role = "member"
    language: Language = "en"


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    language: Language | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    organisation_id: str
    email: str
    name: str
    role: Role
    language: Language
    created_at: datetime


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role = "member"
    user_id: str | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    role: Role
    user_id: str | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself; shown once, never again")


@router.post("/organisations", status_code=status.HTTP_201_CREATED, response_model=OrganisationCreated)
def create_organisation(
    body: OrganisationIn, principal: Principal = Depends(organisation_creator), session: Session = Depends(db_session)
) -> OrganisationCreated:
    """Create an organisation with a first admin key (and admin user, if an email is given)."""
    org = organisations.create_organisation(
        session, name=body.name, kind=body.kind, clearance=body.clearance, platform_admin=body.platform_admin
    )
    user = None
    if body.admin_email:
        user = organisations.create_user(
            session, org.id, email=body.admin_email, name=body.admin_name, role="admin", language=body.admin_language
        )
    _, plaintext = keys.issue_api_key(
        session, org.id, name="first admin key", role="admin", user_id=user.id if user else None
    )
    session.commit()
    log.info(
        "organisation created",
        extra={"organisation_id": org.id, "kind": org.kind, "clearance": org.clearance, "by": principal.actor},
    )
    return OrganisationCreated(
        organisation=OrganisationOut.model_validate(org), admin_user_id=user.id if user else None, api_key=plaintext
    )


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(
    principal: Principal = Depends(current_principal), session: Session = Depends(db_session)
) -> list[OrganisationOut]:
    """Every organisation for a platform administrator; otherwise only the caller's own."""
    if principal.may_create_organisations:
        rows = organisations.list_organisations(session)
    else:
        rows = [organisations.get_organisation(session, organisation_of(principal))]
    return [OrganisationOut.model_validate(r) for r in rows]


@router.get("/organisations/me", response_model=OrganisationOut)
def my_organisation(
    principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> OrganisationOut:
    """The caller's organisation."""
    return OrganisationOut.model_validate(organisations.get_organisation(session, organisation_of(principal)))


@router.get("/organisations/{organisation_id}", response_model=OrganisationOut)
def get_organisation(
    organisation_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> OrganisationOut:
    """One organisation: the caller's own, or any for a platform administrator."""
    if organisation_id != principal.organisation_id and not principal.may_create_organisations:
        raise NotFound("organisation not found")
    return OrganisationOut.model_validate(organisations.get_organisation(session, organisation_id))


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)) -> list[UserOut]:
    """The organisation's users."""
    return [UserOut.model_validate(u) for u in organisations.list_users(session, organisation_of(principal))]


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut, tags=["users"])
def create_user(
    body: UserIn, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> UserOut:
    """Add a user to the organisation (admins)."""
    user = organisations.create_user(
        session, organisation_of(principal), email=body.email, name=body.name, role=body.role, language=body.language
    )
    session.commit()
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(
    user_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> UserOut:
    """One user of the organisation."""
    return UserOut.model_validate(organisations.get_user(session, organisation_of(principal), user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(
    user_id: str, body: UserPatch, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> UserOut:
    """Change a user's name, role or language (admins)."""
    user = organisations.update_user(
        session, organisation_of(principal), user_id, name=body.name, role=body.role, language=body.language
    )
    session.commit()
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
def delete_user(
    user_id: str, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> None:
    """Remove a user (admins)."""
    organisations.delete_user(session, organisation_of(principal), user_id)
    session.commit()


@router.get("/api-keys", response_model=list[ApiKeyOut], tags=["api-keys"])
def list_api_keys(
    principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> list[ApiKeyOut]:
    """The organisation's API keys, without the keys themselves (admins)."""
    return [ApiKeyOut.model_validate(k) for k in keys.list_api_keys(session, organisation_of(principal))]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, tags=["api-keys"])
def create_api_key(
    body: ApiKeyIn, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> ApiKeyCreated:
    """Issue a key; the answer is the only time the key is shown (admins)."""
    organisation_id = organisation_of(principal)
    if body.user_id is not None:
        organisations.get_user(session, organisation_id, body.user_id)
    key, plaintext = keys.issue_api_key(session, organisation_id, name=body.name, role=body.role, user_id=body.user_id)
    session.commit()
    log.info(
        "api key issued",
        extra={"organisation_id": organisation_id, "key_id": key.id, "role": key.role, "by": principal.actor},
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=plaintext)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api-keys"])
def revoke_api_key(
    key_id: str, principal: Principal = Depends(tenant_admin), session: Session = Depends(db_session)
) -> ApiKeyOut:
    """Revoke a key (admins)."""
    key = keys.revoke_api_key(session, organisation_of(principal), key_id)
    session.commit()
    log.info("api key revoked", extra={"organisation_id": key.organisation_id, "key_id": key.id, "by": principal.actor})
    return ApiKeyOut.model_validate(key)
