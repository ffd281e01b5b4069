"""The crisis view for government users only: exposure, stress tests and the cross-organisation crisis list."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import Principal, tenant_member
from services.notify.store.errors import Rejected
from services.notify.store.exposure import (
    MAIN_ORIGIN_SHARE,
    Exposure,
    crisis_list,
    find_exposure,
    shipped_import_shares,
    supply_affected,
)
from services.notify.store.models import utcnow
from shared.catalog import load_catalog
from shared.durations import parse_duration
from shared.events import CountryCode, MaterialId
from shared.problems import answers

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["exposure"])
CRISIS_WINDOW = "30d"  # deliveries the crisis list counts, by default; at most CRISIS_WINDOW_MAX
CRISIS_WINDOW_MAX = timedelta(days=366)
CRISIS_READS = Counter(
    "mews_notify_crisis_reads_total",
    "Cross-organisation reads by government users, by view (exposure, stress_test, crisis)",
    ["view"],
)


class BomPathOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    path: str = Field(description="product>component")
    component: str
    material: str
    share: float | None
    quantity: float | None
    unit: str
    supplier: str
    origin_country: str | None
    origin_unknown: bool = Field(description="The BOM line names no origin country")
    likely_origins: dict[str, float] = Field(
        description="For a line of unknown origin: the material's main origins (at least "
        f"{MAIN_ORIGIN_SHARE:.0%} of extra-EU imports) and their shares"
    )


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
    products: list[ProductExposureOut]


class DirectSubscriberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: str
    subscriptions: list[str]


class ExposureOut(BaseModel):
    material: str
    country: str | None
    organisation_count: int = Field(description="Organisations exposed through BOM lines")
    product_count: int
    origin_unknown_count: int = Field(description="BOM lines counted that name no origin country")
    organisations: list[OrganisationExposureOut] = Field(description="Exposed through their products' BOM lines")
    direct_subscribers: list[DirectSubscriberOut] = Field(
        description="Subscribe to the material; not shown to be exposed (no BOM line says they use it)"
    )


class StressTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    country: CountryCode = Field(description="The partner that stops exporting, ISO 3166-1 alpha-2")
    material: MaterialId


class SupplyAffectedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    extra_eu_share: float | None = Field(description="The country's share of extra-EU imports; null without data")
    total_import_share: float | None = Field(description="Its share of all imports, intra-EU ones included")
    basis: str | None = Field(description="value or quantity")
    period: str
    source: str


class StressTestOut(ExposureOut):
    supply_affected: SupplyAffectedOut


class CrisisOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    material: str
    rule: str
    severity: str
    since: datetime
    organisations: list[str] = Field(description="Organisations with this alert firing")
    alerts: int
    delivered: int = Field(description="Alerts delivered to at least one channel")
    acknowledged: int
    exposed: list[str] = Field(description="Organisations exposed to the material through BOM lines")
    subscribers: list[str] = Field(description="Organisations subscribing to the material")


@answers(403)
def government_reader(principal: Principal = Depends(tenant_member)) -> Principal:
    """FastAPI dependency: a government-cleared ministry or agency (whatever the role)."""
    if not principal.may_see_exposure:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "exposure is for government-cleared ministries and agencies only"
        )
    return principal


def _exposure_fields(found: Exposure) -> dict:
    return {
        "material": found.material,
        "country": found.country,
        "organisation_count": len(found.organisations),
        "product_count": found.product_count,
        "origin_unknown_count": found.origin_unknown_count,
        "organisations": [OrganisationExposureOut.model_validate(o) for o in found.organisations],
        "direct_subscribers": [DirectSubscriberOut.model_validate(s) for s in found.subscribers],
    }


def _audit(view: str, principal: Principal, **fields: object) -> None:
    # Reading across organisations is audited.
    CRISIS_READS.labels(view).inc()
    log.info(
        "%s read",
        view.replace("_", " "),
        extra={"organisation_id": principal.organisation_id, "by": principal.actor, **fields},
    )


@router.get("/exposure", response_model=ExposureOut)
def exposure(
    material: MaterialId,
    country: CountryCode | None = None,
    principal: Principal = Depends(government_reader),
    session: Session = Depends(db_session),
) -> ExposureOut:
    """Organisations exposed to a material through BOM lines (from `country`), and its direct subscribers apart."""
    found = find_exposure(session, material, country)
    _audit("exposure", principal, material=material, country=country, organisations=len(found.organisations))
    return ExposureOut(**_exposure_fields(found))


@router.post("/stress-tests", response_model=StressTestOut)
def stress_test(
    body: StressTestIn, principal: Principal = Depends(government_reader), session: Session = Depends(db_session)
) -> StressTestOut:
    """What if `country` stops exporting `material`: who is exposed, through which BOM path, and the share of
    the EU's supply affected (extra-EU import shares of the shipped trade table)."""
    catalog = load_catalog()
    try:
        catalog.material(body.material)
        catalog.country(body.country)
    except KeyError as exc:
        raise Rejected(exc.args[0]) from None
    shares = shipped_import_shares()
    found = find_exposure(session, body.material, body.country, shares)
    _audit(
        "stress_test", principal, material=body.material, country=body.country, organisations=len(found.organisations)
    )
    affected = supply_affected(shares, body.material, body.country)
    return StressTestOut(**_exposure_fields(found), supply_affected=SupplyAffectedOut.model_validate(affected))


@router.get("/crisis", response_model=list[CrisisOut])
def crisis(
    window: Annotated[
        str, Query(description="Count deliveries of this long ago at most: 12h, 30d, 2w (at most 366d)")
    ] = CRISIS_WINDOW,
    principal: Principal = Depends(government_reader),
    session: Session = Depends(db_session),
) -> list[CrisisOut]:
    """What fires now across organisations, by material and rule: who has it, who is exposed, what was
    delivered (within `window`) and acknowledged."""
    try:
        span = timedelta(seconds=parse_duration(window))
    except ValueError as exc:
        raise Rejected(f"window: {exc}") from None
    if not timedelta(0) < span <= CRISIS_WINDOW_MAX:
        raise Rejected(f"window: {window!r} must be more than 0 and at most 366d")
    found = crisis_list(session, delivered_since=utcnow() - span)
    _audit("crisis", principal, crises=len(found), window=window)
    return [CrisisOut.model_validate(c) for c in found]
