"""Exposure: which organisations and products depend on a material, directly or through a bill of materials.

This is the crisis view for government users; it reads across organisations, so the API lets only
government-cleared ministries and agencies call it. A direct subscriber follows a material; it is not shown
to be exposed (nothing says it uses the material). An organisation is exposed through a BOM line using the
material; a line without an origin country is kept, flagged "origin unknown", and counted against the
material's main origins from trade data.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.notify.store.models import (
    SEVERITIES,
    Alert,
    BomLine,
    Notification,
    Organisation,
    Product,
    Subscription,
)

# A partner with at least this share of the EU's extra-EU imports of a material is one of its main origins:
# a BOM line of unknown origin may come from it.
MAIN_ORIGIN_SHARE = 0.05


@dataclass(frozen=True)
class ImportShares:
    """Extra-EU import shares of each material by partner, for one period, and where they come from."""

    source: str
    period: str
    materials: dict[str, dict[str, Any]]

    def partners(self, material: str) -> dict[str, float]:
        entry = self.materials.get(material)
        return dict(entry["partners"]) if entry else {}

    def main_origins(self, material: str) -> dict[str, float]:
        return {c: s for c, s in self.partners(material).items() if s >= MAIN_ORIGIN_SHARE}


@cache
def shipped_import_shares() -> ImportShares:
    """The table shipped with the notifier (`data/import_shares.json`, written by `mews trade table`)."""
    text = resources.files("services.notify").joinpath("data/import_shares.json").read_text(encoding="utf-8")
    table = json.loads(text)
    return ImportShares(table["source"], table["period"], table["materials"])


@dataclass
class BomPath:
    """One route from a product to the material: the component, how much, from whom and where."""

    path: str  # "Radar module>GaN chip"
    component: str
    material: str
    share: float | None
    quantity: float | None
    unit: str
    supplier: str
    origin_country: str | None
    origin_unknown: bool
    # For a line of unknown origin: the material's main origins and their shares of extra-EU imports.
    likely_origins: dict[str, float] = field(default_factory=dict)


@dataclass
class ProductExposure:
    """A product that needs the material, with every BOM line that says so."""

    id: str
    name: str
    paths: list[BomPath] = field(default_factory=list)


@dataclass
class OrganisationExposure:
    """One organisation exposed through its products' BOM lines."""

    id: str
    name: str
    kind: str
    products: list[ProductExposure] = field(default_factory=list)


@dataclass
class DirectSubscriber:
    """An organisation that subscribes to the material: it follows it, which says nothing about its use."""

    id: str
    name: str
    kind: str
    subscriptions: list[str] = field(default_factory=list)


@dataclass
class Exposure:
    """Everyone exposed to a material (optionally through BOM lines from one origin country), and subscribers."""

    material: str
    country: str | None
    organisations: list[OrganisationExposure]
    subscribers: list[DirectSubscriber]

    @property
    def product_count(self) -> int:
        return sum(len(o.products) for o in self.organisations)

    @property
    def origin_unknown_count(self) -> int:
        return sum(p.origin_unknown for o in self.organisations for pr in o.products for p in pr.paths)


def find_exposure(
    session: Session, material: str, country: str | None = None, shares: ImportShares | None = None
) -> Exposure:
    """Organisations exposed to a material through BOM lines, and the ones subscribing to it, kept apart.

    With a country, a BOM line counts when its origin is that country, or when its origin is unknown and the
    country is one of the material's main origins (or the trade table knows nothing of the material).
    """
    shares = shares or shipped_import_shares()
    main_origins = shares.main_origins(material)

    subscribers: dict[str, DirectSubscriber] = {}
    direct = session.execute(
        select(Subscription.id, Organisation)
        .join(Organisation, Organisation.id == Subscription.organisation_id)
        .where(Subscription.material == material)
        .order_by(Subscription.created_at, Subscription.id)
    )
    for subscription_id, org in direct:
        subscribers.setdefault(org.id, DirectSubscriber(org.id, org.name, org.kind)).subscriptions.append(
            subscription_id
        )

    lines = (
        select(BomLine, Product, Organisation)
        .join(Product, Product.id == BomLine.product_id)
        .join(Organisation, Organisation.id == Product.organisation_id)
        .where(BomLine.material == material)
    )
    if country is not None:
        origins = [BomLine.origin_country == country]
        if country in main_origins or not main_origins:
            origins.append(BomLine.origin_country.is_(None))
        lines = lines.where(or_(*origins))
    found: dict[str, OrganisationExposure] = {}
    products: dict[str, ProductExposure] = {}
    for line, product, org in session.execute(lines.order_by(Product.name, Product.id, BomLine.component, BomLine.id)):
        entry = products.get(product.id)
        if entry is None:
            entry = products[product.id] = ProductExposure(product.id, product.name)
            found.setdefault(org.id, OrganisationExposure(org.id, org.name, org.kind)).products.append(entry)
        unknown = line.origin_country is None
        entry.paths.append(
            BomPath(
                f"{product.name}>{line.component}",
                line.component,
                line.material,
                line.share,
                line.quantity,
                line.unit,
                line.supplier,
                line.origin_country,
                unknown,
                main_origins if unknown else {},
            )
        )
    return Exposure(
        material,
        country,
        sorted(found.values(), key=lambda o: (o.name, o.id)),
        sorted(subscribers.values(), key=lambda o: (o.name, o.id)),
    )


@dataclass
class SupplyAffected:
    """The share of the EU's supply of a material a stop of one partner's exports takes away (from trade)."""

    extra_eu_share: float | None  # of extra-EU imports
    total_import_share: float | None  # of all imports into EU member states, intra-EU ones included
    basis: str | None
    period: str
    source: str


def supply_affected(shares: ImportShares, material: str, country: str) -> SupplyAffected:
    entry = shares.materials.get(material)
    if entry is None:
        return SupplyAffected(None, None, None, shares.period, shares.source)
    share = float(entry["partners"].get(country, 0.0))
    extra, intra = float(entry["extra_eu_total"]), float(entry["intra_eu_total"])
    total = extra * share / (extra + intra) if extra + intra > 0 else None
    return SupplyAffected(share, total, entry["basis"], shares.period, shares.source)


@dataclass
class Crisis:
    """One (material, rule) firing now across organisations: who has it, who is exposed, what reached them."""

    material: str
    rule: str
    severity: str
    since: Any
    organisations: list[str]
    alerts: int
    delivered: int
    acknowledged: int
    exposed: list[str]
    subscribers: list[str]


def crisis_list(
    session: Session, shares: ImportShares | None = None, *, delivered_since: datetime | None = None
) -> list[Crisis]:
    """Every (material, rule) with a firing alert, worst first: alert, delivery and acknowledgement counts.

    `delivered` counts the alerts delivered since `delivered_since` (and since the earliest firing episode began:
    an older delivery was of an earlier episode), so the read is bounded however long the outbox's history is.
    """
    firing = session.execute(
        select(Alert, Organisation.name)
        .join(Organisation, Organisation.id == Alert.organisation_id)
        .where(Alert.status == "firing")
    ).all()
    by_rule: dict[tuple[str, str], list[tuple[Alert, str]]] = defaultdict(list)
    for alert, name in firing:
        by_rule[(alert.material, alert.rule)].append((alert, name))
    delivered_alerts: set[str] = set()
    if firing:
        ids = {a.id for a, _ in firing}
        since = min(a.starts_at for a, _ in firing)
        if delivered_since is not None:
            since = max(since, delivered_since)
        for (alert_ids,) in session.execute(
            select(Notification.alert_ids).where(
                Notification.status == "delivered",
                Notification.delivered_at >= since,
                Notification.organisation_id.in_({a.organisation_id for a, _ in firing}),
            )
        ):
            delivered_alerts.update(i for i in alert_ids if i in ids)
    exposure: dict[str, Exposure] = {}
    crises = []
    for (material, rule), rows in by_rule.items():
        if material not in exposure:
            exposure[material] = find_exposure(session, material, shares=shares)
        found = exposure[material]
        severity = max((a.severity for a, _ in rows), key=_severity_rank)
        crises.append(
            Crisis(
                material,
                rule,
                severity,
                min(a.starts_at for a, _ in rows),
                sorted({name for _, name in rows}),
                len(rows),
                sum(a.id in delivered_alerts for a, _ in rows),
                sum(a.acknowledged_at is not None for a, _ in rows),
                [o.name for o in found.organisations],
                [s.name for s in found.subscribers],
            )
        )
    return sorted(crises, key=lambda c: (-_severity_rank(c.severity), c.material, c.rule))


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1
