"""Which organisations a breach concerns: an index from material to subscriptions, direct or through a BOM.

A breach is matched by one dictionary lookup on its material, not by scanning every subscription.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.notify.pipeline.alert import SEVERITY_RANK
from services.notify.store import models
from shared.events import Severity


@dataclass(frozen=True)
class SubscriptionSpec:
    """A subscription as matching sees it: a material, or a product with its BOM lines (component, material)."""

    id: str
    organisation_id: str
    min_severity: Severity
    channel_ids: tuple[str, ...]
    material: str | None = None
    product_name: str | None = None
    bom: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IndexEntry:
    """One way an organisation is exposed to a material."""

    organisation_id: str
    subscription_id: str
    via: str  # "material:gallium" or "product:Radar module>GaN chip"
    min_severity: Severity
    channel_ids: tuple[str, ...]


@dataclass
class Match:
    """Everything one organisation should learn about one breach: why (via) and where (channels)."""

    organisation_id: str
    via: list[str] = field(default_factory=list)
    channel_ids: list[str] = field(default_factory=list)
    subscription_ids: list[str] = field(default_factory=list)


def exposures(spec: SubscriptionSpec) -> list[tuple[str, str]]:
    """The (material, via) pairs a subscription covers."""
    if spec.material is not None:
        return [(spec.material, f"material:{spec.material}")]
    return [(material, f"product:{spec.product_name}>{component}") for component, material in spec.bom]


def _accepts(min_severity: Severity, severity: Severity) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[min_severity]


def _merge(entries: Iterable[IndexEntry], severity: Severity) -> dict[str, Match]:
    matches: dict[str, Match] = {}
    for entry in entries:
        if not _accepts(entry.min_severity, severity):
            continue
        match = matches.setdefault(entry.organisation_id, Match(entry.organisation_id))
        if entry.via not in match.via:
            match.via.append(entry.via)
        if entry.subscription_id not in match.subscription_ids:
            match.subscription_ids.append(entry.subscription_id)
        for channel_id in entry.channel_ids:
            if channel_id not in match.channel_ids:
                match.channel_ids.append(channel_id)
    return matches


class SubscriptionIndex:
    """Material -> every (organisation, subscription, via) exposed to it."""

    def __init__(self, specs: Iterable[SubscriptionSpec]) -> None:
        self._by_material: dict[str, list[IndexEntry]] = defaultdict(list)
        self._merged: dict[tuple[str, Severity], dict[str, Match]] = {}
        self.size = 0
        for spec in specs:
            self.size += 1
            for material, via in exposures(spec):
                self._by_material[material].append(
                    IndexEntry(spec.organisation_id, spec.id, via, spec.min_severity, spec.channel_ids)
                )

    def lookup(self, material: str, severity: Severity) -> dict[str, Match]:
        """The organisations a breach of this material and severity concerns, keyed by organisation id.

        The index never changes once built, so each (material, severity) is merged once and then served
        from a dictionary; callers must treat the answer as read-only.
        """
        key = (material, severity)
        found = self._merged.get(key)
        if found is None:
            found = self._merged[key] = _merge(self._by_material.get(material, ()), severity)
        return found

    def organisations_exposed(self, material: str) -> set[str]:
        return {e.organisation_id for e in self._by_material.get(material, ())}


def scan_subscriptions(specs: Iterable[SubscriptionSpec], material: str, severity: Severity) -> dict[str, Match]:
    """`SubscriptionIndex.lookup` by scanning every subscription: the benchmark's baseline."""
    entries = [
        IndexEntry(s.organisation_id, s.id, via, s.min_severity, s.channel_ids)
        for s in specs
        for m, via in exposures(s)
        if m == material
    ]
    return _merge(entries, severity)


def load_subscription_specs(session: Session) -> list[SubscriptionSpec]:
    """Every subscription with its channels and (for a product) its BOM, read in three queries."""
    rows = session.scalars(
        select(models.Subscription).options(
            selectinload(models.Subscription.channels),
            selectinload(models.Subscription.product).selectinload(models.Product.bom_lines),
        )
    ).all()
    specs = []
    for sub in rows:
        product = sub.product
        specs.append(
            SubscriptionSpec(
                id=sub.id,
                organisation_id=sub.organisation_id,
                min_severity=Severity(sub.min_severity),
                channel_ids=tuple(c.id for c in sub.channels),
                material=sub.material,
                product_name=product.name if product else None,
                bom=tuple((line.component, line.material) for line in product.bom_lines) if product else (),
            )
        )
    return specs


def build_index(session: Session) -> SubscriptionIndex:
    """The index of every subscription in the store."""
    return SubscriptionIndex(load_subscription_specs(session))
