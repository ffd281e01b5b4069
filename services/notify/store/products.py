"""Products and their bills of materials: how a company is exposed to a material it never buys by name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.notify.store.errors import NotFound, Rejected
from services.notify.store.models import BomLine, Product


@dataclass(frozen=True)
class BomLineSpec:
    """One BOM line as a caller describes it."""

    component: str
    material: str
    share: float | None = None
    quantity: float | None = None
    unit: str = ""
    supplier: str = ""
    origin_country: str | None = None


def _lines(specs: Iterable[BomLineSpec]) -> list[BomLine]:
    lines = [
        BomLine(
            component=s.component,
            material=s.material,
            share=s.share,
            quantity=s.quantity,
            unit=s.unit,
            supplier=s.supplier,
            origin_country=s.origin_country,
        )
        for s in specs
    ]
    if not lines:
        raise Rejected("a product needs at least one BOM line")
    return lines


def create_product(
    session: Session, organisation_id: str, *, name: str, description: str = "", bom: Iterable[BomLineSpec]
) -> Product:
    """Add a product with its BOM."""
    product = Product(organisation_id=organisation_id, name=name, description=description, bom_lines=_lines(bom))
    session.add(product)
    session.flush()
    return product


def list_products(session: Session, organisation_id: str) -> list[Product]:
    """An organisation's products with their BOM lines, by name."""
    return list(
        session.scalars(
            select(Product)
            .where(Product.organisation_id == organisation_id)
            .options(selectinload(Product.bom_lines))
            .order_by(Product.name, Product.id)
        )
    )


def get_product(session: Session, organisation_id: str, product_id: str) -> Product:
    """One product of the organisation."""
    product = session.get(Product, product_id)
    if product is None or product.organisation_id != organisation_id:
        raise NotFound("product not found")
    return product


def replace_product(
    session: Session, organisation_id: str, product_id: str, *, name: str, description: str, bom: Iterable[BomLineSpec]
) -> Product:
    """Replace a product's name, description and whole BOM."""
    product = get_product(session, organisation_id, product_id)
    product.name, product.description = name, description
    product.bom_lines = _lines(bom)
    session.flush()
    return product


def delete_product(session: Session, organisation_id: str, product_id: str) -> None:
    """Remove a product, its BOM and the subscriptions that watch it."""
    session.delete(get_product(session, organisation_id, product_id))
    session.flush()
