"""The crisis view: which organisations and products depend on a material, for government users only."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from services.notify.access import Principal, tenant_member
from services.notify.api.deps import db_session
from services.notify.store.exposure import find_exposure
from shared.events import CountryCode, MaterialId

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["exposure"])


class BomPathOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    path: str
    component: str
    share: float | None
    quantity: float | None
    unit: str
    supplier: str
    origin_country: str | None


class ProductExposureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    paths: list[BomPathOut]


class OrganisationExposureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: str
    direct: bool
    direct_subscriptions: list[str]
    products: list[ProductExposureOut]


class ExposureOut(BaseModel):
    material: str
    country: str | None
    organisation_count: int
    product_count: int
    organisations: list[OrganisationExposureOut]


@router.get("/exposure", response_model=ExposureOut)
def exposure(material: MaterialId, country: CountryCode | None = None,
             principal: Principal = Depends(tenant_member),
             session: Session = Depends(db_session)) -> ExposureOut:
    """Organisations and products depending on a material, directly or through BOM lines (from `country`)."""
    if not principal.may_see_exposure:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "exposure is for government-cleared ministries and agencies only")
    found = find_exposure(session, material, country)
    # Reading across organisations is audited.
    log.info("exposure read", extra={"organisation_id": principal.organisation_id, "by": principal.actor,
                                     "material": material, "country": country,
                                     "organisations": len(found.organisations)})
    return ExposureOut(material=found.material, country=found.country,
                       organisation_count=len(found.organisations),
                       product_count=sum(len(o.products) for o in found.organisations),
                       organisations=[OrganisationExposureOut.model_validate(o) for o in found.organisations])
