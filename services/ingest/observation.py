"""The functional core of ingest: raw records from any source become typed events, or a reason why not.

Every adapter (feed, file, API) hands its records here as `Candidate`s, so an item posted to the API and
the same item read from a feed pass exactly the same checks.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from shared.events import (
    Classification,
    LeadTimeQuoted,
    PriceObserved,
    SignalEvent,
    StockReported,
    TradeFlowReported,
    describe_validation_error,
)


class MaterialCatalog(Protocol):
    """The part of `shared.catalog.Catalog` ingest relies on."""

    def resolve_material(self, name: str) -> str | None: ...

    def materials_for_hs(self, code: str) -> tuple: ...

    def resolve_country(self, name: str) -> str | None: ...


class RememberedNames:
    """A catalog whose look-ups by name are remembered: a batch names the same few materials thousands of times.

    Bounded, so input naming endless unknown materials cannot grow it without limit.
    """

    def __init__(self, catalog: MaterialCatalog, size: int = 4096) -> None:
        self._catalog = catalog
        self.resolve_material = functools.lru_cache(maxsize=size)(catalog.resolve_material)
        self.resolve_country = functools.lru_cache(maxsize=size)(catalog.resolve_country)
        self.materials_for_hs = functools.lru_cache(maxsize=size)(catalog.materials_for_hs)

    def __getattr__(self, name: str) -> Any:  # the rest of the catalog (materials, countries) as it is
        return getattr(self._catalog, name)


@dataclass(slots=True)  # not frozen: a frozen dataclass is built at three times the cost, paid per record
class Candidate:
    """One record as a source gave it: which kind, from where, its fields, and its original bytes."""

    kind: str
    source: str
    fields: Mapping[str, Any]
    raw: bytes


@dataclass(slots=True)  # not frozen: a frozen dataclass is built at three times the cost, paid per record
class Accepted:
    """Events to publish; `identities` are the keys that make a repeat of this record a duplicate."""

    events: tuple[SignalEvent, ...]
    identities: tuple[str, ...] = ()

    def dedup_keys(self) -> tuple[str, ...]:
        if self.identities:
            return self.identities
        if len(self.events) == 1:  # most records: no generator for one key
            return (self.events[0].dedup_key(),)
        return tuple(e.dedup_key() for e in self.events)


@dataclass(frozen=True)
class Rejected:
    """Unusable input: `code` is a short label for metrics, `detail` the full reason for the dead-letter topic."""

    code: str
    detail: str


@dataclass(frozen=True)
class Skipped:
    """Valid input that carries no signal for any material: counted and logged, published nowhere."""

    code: str
    detail: str


Outcome = Accepted | Rejected | Skipped


@dataclass(frozen=True)
class Malformed:
    """A record an adapter could not even read (bad row, bad bytes): dead-lettered with its original bytes."""

    code: str
    detail: str
    raw: bytes


Record = Candidate | Malformed


@dataclass(frozen=True)
class Limits:
    """The clock and tolerances a decision is made against, passed in so the core needs no clock."""

    now: datetime
    future_tolerance: timedelta = timedelta(days=1)
    earliest: datetime = datetime(1900, 1, 1, tzinfo=UTC)


# Mass units a price can be quoted per, in kilograms; prices per other units (dmtu, index points) are
# passed through unconverted.
KG_PER_UNIT: dict[str, float] = {
    "kg": 1.0,
    "g": 0.001,
    "t": 1000.0,
    "mt": 1000.0,
    "lb": 0.45359237,
    "troy_oz": 0.0311034768,
}
_UNIT_ALIASES = {
    "tonne": "mt",
    "tonnes": "mt",
    "metric ton": "mt",
    "metric tonne": "mt",
    "ton": "mt",
    "ton_metric": "mt",
    "kilogram": "kg",
    "kgs": "kg",
    "gram": "g",
    "pound": "lb",
    "lbs": "lb",
    "troy oz": "troy_oz",
    "troy ounce": "troy_oz",
    "toz": "troy_oz",
    "oz t": "troy_oz",
}


@functools.lru_cache(maxsize=1024)  # sources spell a handful of units, over and over
def normalise_unit(unit: str) -> str:
    """A unit spelled one way: 'Tonne' and 'metric ton' both become 'mt'."""
    u = " ".join(str(unit).strip().lower().replace("$/", "").strip("()").split())
    return _UNIT_ALIASES.get(u, u.replace(" ", "_"))


def convert_price(price: float, from_unit: str, to_unit: str) -> float | None:
    """The price per `to_unit` of a price per `from_unit`; None when the units are not both masses."""
    if from_unit == to_unit:
        return price
    if from_unit not in KG_PER_UNIT or to_unit not in KG_PER_UNIT:
        return None
    return price * KG_PER_UNIT[to_unit] / KG_PER_UNIT[from_unit]


_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")


def parse_time(value: Any) -> datetime:
    """A timezone-aware UTC datetime from ISO text, a date, an epoch number or a datetime.

    Text without an offset is read as UTC: every source we know publishes UTC or dates only.
    """
    if isinstance(value, str):  # first: nearly every time arrives as text
        return _remembered_time(value) if len(value) <= 64 else _time_from_text(value)
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("time is not finite")
        dt = datetime.fromtimestamp(value, UTC)
    else:
        raise ValueError(f"cannot read a time from {type(value).__name__}")
    return _as_utc(dt)


def _time_from_text(value: str) -> datetime:
    text = value.strip()
    if not text:
        raise ValueError("time is empty")
    if _YEAR_MONTH.fullmatch(text):
        text += "-01"
    return _as_utc(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))


# A backfill's days repeat across its materials. Only short texts are kept (a time is about 25 characters, and a
# hostile one can be padded), and a text that is no time raises again each time.
_remembered_time = functools.lru_cache(maxsize=4096)(_time_from_text)


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)


def check_time(dt: datetime, limits: Limits) -> Rejected | None:
    """Why a timestamp cannot be right (future_time: far in the future; invalid_time: before 1900), or None."""
    if dt > limits.now + limits.future_tolerance:
        return Rejected("future_time", f"timestamp {dt.isoformat()} lies in the future (now {limits.now.isoformat()})")
    if dt < limits.earliest:
        return Rejected("invalid_time", f"timestamp {dt.isoformat()} is before {limits.earliest.year}")
    return None


def event_time(fields: Mapping[str, Any], name: str, limits: Limits) -> datetime | Rejected:
    """The event time in `fields[name]`, or why it is unusable (unreadable, too far in the future or past)."""
    try:
        at = parse_time(fields.get(name))
    except (ValueError, OverflowError, OSError) as exc:
        return Rejected("invalid_time", f"{name}: {exc}")
    if (problem := check_time(at, limits)) is not None:
        return problem
    return at


def catalog_material(fields: Mapping[str, Any], catalog: MaterialCatalog) -> str | Rejected:
    """The catalog id of the material a record names, or why there is none."""
    name = str(fields.get("material") or "").strip()
    material = catalog.resolve_material(name) if name else None
    if material is None:
        return Rejected("unknown_material", f"material {name[:80]!r} is not in the catalog")
    return material


def parse_number(value: Any) -> float:
    """A float from a number or plain numeric text; thousands separators are refused as ambiguous."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", text, re.I):
            raise ValueError(f"{text[:40]!r} is not a plain number")
        return float(text)
    raise ValueError(f"cannot read a number from {type(value).__name__}")


@dataclass(frozen=True)
class PriceTerms:
    """How a source quotes prices, and what to convert them to."""

    currency: str = ""
    unit: str = ""
    to_currency: str = ""
    fx_rate: float | None = None  # units of to_currency per unit of currency
    to_unit: str = ""
    material: str = ""
    series: str = ""
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)


_NO_TERMS = PriceTerms()  # what an API price is read with: built once, not per item


def normalise_price(
    candidate: Candidate, catalog: MaterialCatalog, limits: Limits, terms: PriceTerms | None = None
) -> Outcome:
    """A PriceObserved in the stated (or converted) unit and currency, or why the record is unusable."""
    terms = terms or _NO_TERMS
    f = candidate.fields
    name = str(f.get("material") or terms.material or "").strip()
    if not name:
        return Rejected("missing_material", "no material named")
    material = catalog.resolve_material(name)
    if material is None:
        return Rejected("unknown_material", f"material {name[:80]!r} is not in the catalog")
    try:
        price = parse_number(f.get("price"))
    except ValueError as exc:
        return Rejected("invalid_price", f"price: {exc}")
    if not math.isfinite(price) or price <= 0:
        return Rejected("invalid_price", f"price must be positive and finite, got {price!r}")
    observed_at = event_time(f, "observed_at", limits)
    if isinstance(observed_at, Rejected):
        return observed_at
    currency = str(f.get("currency") or terms.currency).strip().upper()
    unit = normalise_unit(str(f.get("unit") or terms.unit))
    if not currency:
        return Rejected("missing_currency", "no currency stated")
    if not unit:
        return Rejected("missing_unit", "no unit stated")
    if terms.to_currency and terms.fx_rate is not None and terms.to_currency != currency:
        price, currency = price * terms.fx_rate, terms.to_currency
    if terms.to_unit:
        to_unit = normalise_unit(terms.to_unit)
        converted = convert_price(price, unit, to_unit)
        if converted is None:
            return Rejected("unit_conversion", f"cannot convert a price per {unit} to one per {to_unit}")
        price, unit = converted, to_unit
    try:
        event = PriceObserved(
            material=material,
            source=candidate.source,
            observed_at=observed_at,
            price=price,
            currency=currency,
            unit=unit,
            series=str(f.get("series") or terms.series),
            url=str(f.get("url") or terms.url),
        )
    except ValidationError as exc:
        return Rejected("invalid_price", describe_validation_error(exc))
    return Accepted((event,))


_PERIOD_FORMS = (
    (re.compile(r"^(\d{4})$"), lambda m: m[1]),
    (re.compile(r"^(\d{4})-?(0[1-9]|1[0-2])$"), lambda m: f"{m[1]}-{m[2]}"),
    # Comext writes annual totals as month 52.
    (re.compile(r"^(\d{4})52$"), lambda m: m[1]),
)


def normalise_period(value: Any) -> str | None:
    """'2023', '2023-04', '202304' or Comext's '202352' (the year) as 'YYYY' or 'YYYY-MM'; None if neither."""
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    for pattern, form in _PERIOD_FORMS:
        if (m := pattern.match(text)) is not None:
            return form(m)
    return None


def _country(catalog: MaterialCatalog, value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if re.fullmatch(r"[A-Z]{2}", text):
        # Comext writes Greece as EL, the United Kingdom as UK (EU protocol codes) and Serbia as XS (Eurostat
        # geonomenclature); ISO 3166 says GR, GB, RS.
        code = {"EL": "GR", "UK": "GB", "XS": "RS"}.get(text, text)
        resolved = catalog.resolve_country(code)
        return code if resolved == code else None
    return catalog.resolve_country(text)


def normalise_trade(candidate: Candidate, catalog: MaterialCatalog, limits: Limits) -> Outcome:
    """TradeFlowReported events, one per material the HS/CN code maps to, or why not."""
    f = candidate.fields
    if "skip" in f:
        return Skipped("not_a_flow", str(f["skip"]))
    code = re.sub(r"\D", "", str(f.get("hs_code") or ""))
    if not 4 <= len(code) <= 10:
        return Rejected("invalid_code", f"HS/CN code {str(f.get('hs_code'))[:20]!r} is not 4 to 10 digits")
    materials = tuple(catalog.materials_for_hs(code))
    if not materials:
        return Skipped("no_material", f"HS/CN code {code} maps to no catalog material")
    reporter_raw = str(f.get("reporter") or "").strip()
    reporter = (
        "EU27"
        if reporter_raw.upper().startswith("EU27") or reporter_raw.upper() == "EU"
        else _country(catalog, reporter_raw) or _country(catalog, f.get("reporter_name"))
    )
    if reporter is None:
        return Rejected("unknown_country", f"reporter {reporter_raw[:40]!r} is not a known country")
    partner_raw = str(f.get("partner") or "").strip()
    partner = _country(catalog, partner_raw) or _country(catalog, f.get("partner_name"))
    if partner is None:
        return Skipped("aggregate_partner", f"partner {partner_raw[:40]!r} is not a single country")
    period = normalise_period(f.get("period"))
    if period is None:
        return Rejected("invalid_period", f"period {str(f.get('period'))[:20]!r} is not YYYY, YYYY-MM or YYYYMM")
    if period > limits.now.strftime("%Y-%m")[: len(period)]:
        return Rejected("future_time", f"period {period} lies in the future")
    flow = f.get("flow", "import")
    values: dict[str, float | None] = {}
    for name in ("quantity_kg", "value_eur"):
        raw = f.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[name] = None
            continue
        try:
            number = parse_number(raw)
        except ValueError as exc:
            return Rejected("invalid_number", f"{name}: {exc}")
        if not math.isfinite(number) or number < 0:
            return Rejected("invalid_number", f"{name} must be finite and not negative, got {number!r}")
        values[name] = number
    try:
        events = tuple(
            TradeFlowReported(
                material=m,
                source=candidate.source,
                reporter=reporter,
                partner=partner,
                hs_code=code,
                flow=flow,
                period=period,
                quantity_kg=values["quantity_kg"],
                value_eur=values["value_eur"],
            )
            for m in materials
        )
    except ValidationError as exc:
        return Rejected("invalid_trade", describe_validation_error(exc))
    return Accepted(events)


def normalise_leadtime(candidate: Candidate, catalog: MaterialCatalog, limits: Limits) -> Outcome:
    """A LeadTimeQuoted event (lead time in days; weeks converted), or why not."""
    f = candidate.fields
    material = catalog_material(f, catalog)
    if isinstance(material, Rejected):
        return material
    try:
        if f.get("lead_time_days") not in (None, ""):
            days = parse_number(f["lead_time_days"])
        elif f.get("lead_time_weeks") not in (None, ""):
            days = parse_number(f["lead_time_weeks"]) * 7
        else:
            return Rejected("missing_leadtime", "no lead time given")
    except ValueError as exc:
        return Rejected("invalid_leadtime", f"lead time: {exc}")
    if not math.isfinite(days) or not 0 < days <= 3650:
        return Rejected("invalid_leadtime", f"lead time must be over 0 and at most 3650 days, got {days!r}")
    quoted_at = event_time(f, "quoted_at", limits)
    if isinstance(quoted_at, Rejected):
        return quoted_at
    origin_raw = str(f.get("origin_country") or "").strip()
    origin = _country(catalog, origin_raw) if origin_raw else None
    if origin_raw and origin is None:
        return Rejected("unknown_country", f"origin country {origin_raw[:40]!r} is not known")
    try:
        event = LeadTimeQuoted(
            material=material,
            source=candidate.source,
            quoted_at=quoted_at,
            lead_time_days=days,
            origin_country=origin,
            supplier=str(f.get("supplier") or "").strip(),
        )
    except ValidationError as exc:
        return Rejected("invalid_leadtime", describe_validation_error(exc))
    return Accepted((event,))


def normalise_stock(candidate: Candidate, catalog: MaterialCatalog, limits: Limits) -> Outcome:
    """A StockReported event (tonnes held on a date; government-only unless classified otherwise), or why not."""
    f = candidate.fields
    material = catalog_material(f, catalog)
    if isinstance(material, Rejected):
        return material
    try:
        tonnes = parse_number(f.get("tonnes"))
    except ValueError as exc:
        return Rejected("invalid_stock", f"tonnes: {exc}")
    if not math.isfinite(tonnes) or tonnes < 0:
        return Rejected("invalid_stock", f"tonnes must be finite and not negative, got {tonnes!r}")
    reported_at = event_time(f, "reported_at", limits)
    if isinstance(reported_at, Rejected):
        return reported_at
    level = str(f.get("classification") or Classification.GOVERNMENT.value).strip().lower()
    if level not in {c.value for c in Classification}:
        return Rejected(
            "invalid_classification",
            f"classification {level[:40]!r} is not one of {', '.join(c.value for c in Classification)}",
        )
    try:
        event = StockReported(
            material=material,
            source=candidate.source,
            reported_at=reported_at,
            tonnes=tonnes,
            holder=str(f.get("holder") or "").strip(),
            classification=Classification(level),
        )
    except ValidationError as exc:
        return Rejected("invalid_stock", describe_validation_error(exc))
    return Accepted((event,))


def raw_of(record: Any) -> bytes:
    """The bytes kept for the dead-letter topic: JSON for structured records, as-is for bytes."""
    if isinstance(record, bytes):
        return record
    return json.dumps(record, default=str, ensure_ascii=False).encode()
