"""Products and their bills of materials (product -> components -> materials)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import Principal, organisation_of, tenant_admin, tenant_member
from services.notify.store import products
from services.notify.store.products import BomLineSpec
from shared.events import CountryCode, MaterialId

router = APIRouter(prefix="/v1/products", tags=["products"])


class BomLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    component: str = Field(min_length=1, max_length=200)
    material: MaterialId
    share: float | None = Field(default=None, ge=0, le=1, description="Fraction of the component by mass")
    quantity: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    unit: str = Field(default="", max_length=32)
    supplier: str = Field(default="", max_length=200)
    origin_country: CountryCode | None = None


class BomLineOut(BomLineIn):
    id: str


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    bom: list[BomLineIn] = Field(min_length=1, max_length=2000)


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str
    bom: list[BomLineOut] = Field(validation_alias="bom_lines")


def _specs(body: ProductIn) -> list[BomLineSpec]:
    return [BomLineSpec(**line.model_dump()) for line in body.bom]


@router.get("", response_model=list[ProductOut])
def list_products(
    principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> list[ProductOut]:
    """The organisation's products with their BOMs."""
    return [ProductOut.model_validate(p) for p in products.list_products(session, organisation_of(principal))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProductOut)
def create_product(
    body: ProductIn,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> ProductOut:
    """Describe a product by its bill of materials (admins)."""
    product = products.create_product(
        session, organisation_of(principal), name=body.name, description=body.description, bom=_specs(body)
    )
    session.commit()
    request.app.state.subscriptions_changed()
    return ProductOut.model_validate(product)


@router.get("/{product_id}", response_model=ProductOut)
def get_product(
    product_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> ProductOut:
    """One product with its BOM."""
    return ProductOut.model_validate(products.get_product(session, organisation_of(principal), product_id))


@router.put("/{product_id}", response_model=ProductOut)
def replace_product(
    product_id: str,
    body: ProductIn,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> ProductOut:
    """Replace a product's description and whole BOM (admins)."""
    product = products.replace_product(
        session, organisation_of(principal), product_id, name=body.name, description=body.description, bom=_specs(body)
    )
    session.commit()
    request.app.state.subscriptions_changed()
    return ProductOut.model_validate(product)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_product(
    product_id: str,
    request: Request,
    principal: Principal = Depends(tenant_admin),
    session: Session = Depends(db_session),
) -> None:
    """Remove a product, its BOM and the subscriptions watching it (admins)."""
    products.delete_product(session, organisation_of(principal), product_id)
    session.commit()
    request.app.state.subscriptions_changed()
