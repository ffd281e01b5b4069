"""Exposure: which organisations and products depend on a material, directly or through a bill of materials.

This is the crisis view for government users; it reads across organisations, so the API lets only
government-cleared ministries and agencies call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store.models import BomLine, Organisation, Product, Subscription


@dataclass
class BomPath:
    """One route from a product to the material: the component, how much, from whom and where."""

    path: str  # "Radar module>GaN chip"
    component: str
    share: float | None
    quantity: float | None
    unit: str
    supplier: str
    origin_country: str | None


@dataclass
class ProductExposure:
    """A product that needs the material, with every BOM line that says so."""

    id: str
    name: str
    paths: list[BomPath] = field(default_factory=list)


@dataclass
class OrganisationExposure:
    """One organisation's dependence on the material."""

    id: str
    name: str
    kind: str
    direct_subscriptions: list[str] = field(default_factory=list)
    products: list[ProductExposure] = field(default_factory=list)

    @property
    def direct(self) -> bool:
        return bool(self.direct_subscriptions)


@dataclass
class Exposure:
    """Everyone exposed to a material (optionally only through BOM lines from one origin country)."""

    material: str
    country: str | None
    organisations: list[OrganisationExposure]


def find_exposure(session: Session, material: str, country: str | None = None) -> Exposure:
    """Organisations depending on a material by a subscription to it or a BOM line using it.

    With a country, only BOM lines whose origin is that country count: a direct subscription says
    nothing about where the material comes from.
    """
    found: dict[str, OrganisationExposure] = {}

    def organisation(row: Organisation) -> OrganisationExposure:
        return found.setdefault(row.id, OrganisationExposure(row.id, row.name, row.kind))

    if country is None:
        direct = session.execute(select(Subscription.id, Organisation)
                                 .join(Organisation, Organisation.id == Subscription.organisation_id)
                                 .where(Subscription.material == material)
                                 .order_by(Subscription.created_at, Subscription.id))
        for subscription_id, org in direct:
            organisation(org).direct_subscriptions.append(subscription_id)

    lines = (select(BomLine, Product, Organisation)
             .join(Product, Product.id == BomLine.product_id)
             .join(Organisation, Organisation.id == Product.organisation_id)
             .where(BomLine.material == material))
    if country is not None:
        lines = lines.where(BomLine.origin_country == country)
    products: dict[str, ProductExposure] = {}
    for line, product, org in session.execute(lines.order_by(Product.name, Product.id, BomLine.component,
                                                             BomLine.id)):
        entry = products.get(product.id)
        if entry is None:
            entry = products[product.id] = ProductExposure(product.id, product.name)
            organisation(org).products.append(entry)
        entry.paths.append(BomPath(f"{product.name}>{line.component}", line.component, line.share, line.quantity,
                                   line.unit, line.supplier, line.origin_country))
    ordered = sorted(found.values(), key=lambda o: (o.name, o.id))
    return Exposure(material, country, ordered)
