"""Dependency indicators: import shares, HHI, top-origin and non-EU shares, import reliance, governance-weighted HHI."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.catalog import load_catalog

# The 27 member states of the European Union, from the catalog (ISO 3166-1 alpha-2; Greece is GR, not EL).
EU_MEMBERS = frozenset(c.code for c in load_catalog().countries if c.eu)


@dataclass(frozen=True)
class ExtraEU:
    """Imports split at the EU border: shares among non-EU origins only, with the intra-EU amount beside them."""

    shares: dict[str, float]  # non-EU origin -> share of extra-EU imports (summing to 1)
    extra_eu_total: float
    intra_eu_total: float


def split_extra_eu(amounts: Mapping[str, float], members: frozenset[str] = EU_MEMBERS) -> ExtraEU:
    """Extra-EU shares of imports by origin; intra-EU trade (re-exports, mostly) is kept out of them.

    The CRMA benchmark of Art. 5(1)(b) and the EU dependency screens are about supply from third countries, so
    a member state shipping on Chinese gallium must not dilute China's share.
    """
    extra = {c: v for c, v in amounts.items() if c not in members}
    return ExtraEU(
        shares=import_shares(extra),
        extra_eu_total=math.fsum(v for v in extra.values() if v > 0),
        intra_eu_total=math.fsum(v for c, v in amounts.items() if c in members and v > 0),
    )


def import_amounts(flows: Iterable[tuple[str, float | None, float | None]]) -> tuple[str, dict[str, float]]:
    """The basis and the amount per origin of import flows given as (origin, quantity_kg, value_eur).

    By quantity when every flow has one (the EU criticality methodology counts tonnes, and a price gap between
    grades says nothing about who supplies), otherwise by value, and the basis says which: never a mix.
    """
    flows = list(flows)
    basis = "quantity" if flows and all(q is not None for _, q, _ in flows) else "value"
    amounts: dict[str, float] = {}
    for origin, quantity, value in flows:
        amount = quantity if basis == "quantity" else value
        amounts[origin] = amounts.get(origin, 0.0) + (amount or 0.0)
    return basis, amounts


def import_shares(amounts: Mapping[str, float]) -> dict[str, float]:
    """Each origin's share (0..1) of the total; origins with zero amounts have share 0; empty when the total is 0."""
    total = math.fsum(v for v in amounts.values() if v > 0)
    if total <= 0:
        return {}
    return {origin: (v / total if v > 0 else 0.0) for origin, v in amounts.items()}


def herfindahl_hirschman(shares: Mapping[str, float]) -> float | None:
    """Herfindahl-Hirschman index on the 0..10,000 scale: the sum of squared percentage shares."""
    if not shares:
        return None
    return math.fsum((100.0 * s) ** 2 for s in shares.values())


def top_origin(shares: Mapping[str, float]) -> tuple[str, float] | None:
    """The origin with the largest share (ties broken alphabetically) and its share."""
    if not shares:
        return None
    origin = min(shares, key=lambda c: (-shares[c], c))
    return origin, shares[origin]


def non_eu_share(shares: Mapping[str, float]) -> float | None:
    """The share of imports from outside the EU."""
    if not shares:
        return None
    return math.fsum(s for c, s in shares.items() if c not in EU_MEMBERS)


def import_reliance(imports_t: float, exports_t: float, production_t: float) -> float | None:
    """Net import reliance (EU CRM methodology): (imports - exports) / (production + imports - exports), 0..1.

    None when apparent consumption is not positive; net exporters have reliance 0.
    """
    apparent = production_t + imports_t - exports_t
    if apparent <= 0:
        return None
    return min(1.0, max(0.0, (imports_t - exports_t) / apparent))


def governance_weighted_hhi(shares: Mapping[str, float], scores: Mapping[str, float]) -> float | None:
    """HHI with each squared share weighted by the origin's governance risk (0 stable .. 1 fragile), 0..10,000.

    Modelled on the HHI_WGI of the EU criticality methodology (European Commission, 2017), with the World Bank
    WGI rescaled to 0..1 instead of 0..10 so the result stays on the familiar HHI scale. An origin without a
    published score is left out rather than given an invented one; None when no origin has a score.
    """
    scored = {c: s for c, s in shares.items() if c in scores}
    if not scored:
        return None
    return math.fsum((100.0 * s) ** 2 * scores[c] for c, s in scored.items())


def governance_risk(estimate: float) -> float:
    """A WGI estimate (about -2.5 strong .. +2.5 weak governance) as a risk on 0 (stable) .. 1 (fragile)."""
    return min(1.0, max(0.0, (2.5 - estimate) / 5.0))


def eu_scaled_wgi(estimate: float) -> float:
    """A WGI estimate on the EU methodology's 0..10 scale, 10 the weakest governance: 10 x governance_risk."""
    return 10.0 * governance_risk(estimate)


@dataclass(frozen=True)
class SupplyConcentration:
    """How concentrated world production of a material at one stage is, and on how well governed countries."""

    hhi: float  # 0..10,000 over the shares of the countries the source names
    top_producer: str
    top_share: float  # 0..1
    hhi_wgi: float | None  # EU methodology: sum of share^2 (0..1) x scaled WGI (0..10), 0..10
    named_share: float  # share of world production the named countries carry (the rest is "other" / withheld)
    governed_share: float  # share carried by named countries with a WGI score (the part hhi_wgi sees)


def supply_concentration(shares: Mapping[str, float], wgi_scaled: Mapping[str, float]) -> SupplyConcentration | None:
    """HHI, top producer and HHI_WGI of world supply shares (0..1 of world production, by producing country).

    HHI_WGI = sum_i s_i^2 x WGI_i with WGI_i on 0..10 (European Commission, Methodology for establishing the EU
    list of critical raw materials, 2017, supply risk). Producers without a WGI score are left out of it.
    """
    positive = {c: s for c, s in shares.items() if s > 0}
    if not positive:
        return None
    top = top_origin(positive)
    assert top is not None
    governed = {c: s for c, s in positive.items() if c in wgi_scaled}
    return SupplyConcentration(
        hhi=math.fsum((100.0 * s) ** 2 for s in positive.values()),
        top_producer=top[0],
        top_share=top[1],
        hhi_wgi=math.fsum(s * s * wgi_scaled[c] for c, s in governed.items()) if governed else None,
        named_share=math.fsum(positive.values()),
        governed_share=math.fsum(governed.values()),
    )
