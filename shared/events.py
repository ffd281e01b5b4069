"""Typed events and their CloudEvents 1.0 JSON envelope.

Every message on Kafka is one of the models below, wrapped in a structured-mode CloudEvents envelope.
The envelope `type` carries the schema version (`mews.price.observed.v1`): fields may be added, never
change meaning; a new meaning is a new version.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import uuid
from abc import abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, overload

from prometheus_client import Counter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import topics

SPECVERSION = "1.0"
MaterialId = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
log = logging.getLogger(__name__)


class Classification(StrEnum):
    """Who may see a signal; ordered from least to most restricted."""

    PUBLIC = "public"
    RESTRICTED = "restricted"
    GOVERNMENT = "government"

    @property
    def rank(self) -> int:
        return _CLASSIFICATION_RANK[self]

    def allows(self, level: Classification | str) -> bool:
        """Whether a holder of this clearance may see what is classified `level`: the one clearance check."""
        try:  # a StrEnum member hashes as its value, so "public" finds Classification.PUBLIC's rank
            return _CLASSIFICATION_RANK[level] <= _CLASSIFICATION_RANK[self]
        except KeyError:
            raise ValueError(f"{level!r} is not a classification (public, restricted, government)") from None

    @classmethod
    def most_restricted(cls, levels: list[Classification]) -> Classification:
        """The most restricted of several levels (public when there are none)."""
        return max(levels, key=lambda c: c.rank, default=cls.PUBLIC)


_CLASSIFICATION_RANK: dict[str, int] = {
    Classification.PUBLIC: 0,
    Classification.RESTRICTED: 1,
    Classification.GOVERNMENT: 2,
}


class Event(BaseModel):
    """Base of every event on the wire."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]

    def subject(self) -> str:
        """The CloudEvents subject: the material id the event is about."""
        return getattr(self, "material", "")


class SignalEvent(Event):
    """Base of the five supply signals ingest publishes and scoring takes in: about one material, at one time."""

    kind: ClassVar[str]  # the signal kind (price, trade, leadtime, news, stock): `SIGNALS` maps it to a topic
    material: MaterialId  # the partition key of every input topic
    if TYPE_CHECKING:  # each kind declares its own default, and the field's place among its fields stays as it was
        classification: Classification = Classification.PUBLIC

    @property
    @abstractmethod
    def occurred_at(self) -> datetime:
        """The event time: when the signal was true, not when it was sent; a material's watermark runs on it."""

    @abstractmethod
    def dedup_key(self) -> str:
        """What makes a repeat of this signal a duplicate, whoever sends it again."""


def period_start(period: str) -> datetime:
    """The first instant (UTC) of a trade period "2023" or "2023-05"."""
    year = int(period[:4])
    month = int(period[5:7]) if len(period) > 4 else 1
    return datetime(year, month, 1, tzinfo=UTC)


# The days of a backfill's prices repeat across its materials, and formatting an aware datetime costs ten times
# a cache hit, paid per event ingest publishes. Cached for UTC only: equal instants in other offsets hash alike.
_utc_isoformat = functools.lru_cache(maxsize=4096)(datetime.isoformat)


def _key_time(dt: datetime) -> str:
    """A time in a dedup key, as isoformat writes it."""
    return _utc_isoformat(dt) if dt.tzinfo is UTC else dt.isoformat()


class PriceObserved(SignalEvent):
    """One price of one material at one time, normalised to the series' stated unit and currency."""

    type: ClassVar[str] = "mews.price.observed.v1"
    kind: ClassVar[str] = "price"
    source: str = Field(max_length=200)
    observed_at: AwareDatetime
    price: float = Field(gt=0, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    unit: str = Field(max_length=32)
    series: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=2000)
    classification: Classification = Classification.PUBLIC

    @property
    def occurred_at(self) -> datetime:
        return self.observed_at

    def dedup_key(self) -> str:
        return f"{self.source}|{self.material}|{self.series}|{_key_time(self.observed_at)}"


class Measure(StrEnum):
    EXPORT_BAN = "export_ban"
    EXPORT_LICENCE = "export_licence"
    EXPORT_QUOTA = "export_quota"
    EXPORT_TAX = "export_tax"
    SANCTION = "sanction"
    EASING = "easing"
    NONE = "none"


class Topic(StrEnum):
    """The kind of supply signal a news item carries: an export control, or another bearing on supply."""

    EXPORT_CONTROL = "export_control"
    PRICE = "price"
    LEADTIME = "leadtime"
    PRODUCTION = "production"  # mine, smelter or refinery outages and cuts
    STOCKPILE = "stockpile"
    TARIFF = "tariff"
    TRADE_VOLUME = "trade_volume"
    NONE = "none"


# What a news item may state, and still be taken at its word: a lead time up to ten years, a price move from a
# total loss to a hundredfold, a measure taking effect within ten years either side of its announcement.
NEWS_LEADTIME_DAYS_MAX = 3650
NEWS_PRICE_CHANGE_PCT = (-100.0, 10000.0)
NEWS_DAYS_UNTIL_IN_FORCE_MAX = 3650
LeadTimeDays = Annotated[int, Field(gt=0, le=NEWS_LEADTIME_DAYS_MAX)]
PriceChangePct = Annotated[float, Field(ge=NEWS_PRICE_CHANGE_PCT[0], le=NEWS_PRICE_CHANGE_PCT[1], allow_inf_nan=False)]
DaysUntilInForce = Annotated[int, Field(ge=-NEWS_DAYS_UNTIL_IN_FORCE_MAX, le=NEWS_DAYS_UNTIL_IN_FORCE_MAX)]


class NewsReported(SignalEvent):
    """A news item bearing on supply, with its classification, the figures it states and the words that decided it.

    One event per material the item is about.
    """

    type: ClassVar[str] = "mews.news.reported.v1"
    kind: ClassVar[str] = "news"
    item_id: str = Field(max_length=200)
    source: str = Field(max_length=200)
    url: str = Field(default="", max_length=2000)
    title: str = Field(max_length=1000)
    summary: str = Field(default="", max_length=20000)
    published_at: AwareDatetime
    language: str = Field(default="und", max_length=8)
    materials: list[MaterialId] = Field(default_factory=list)
    countries: list[CountryCode] = Field(default_factory=list)  # every country named (imposing or affected)
    # The countries that impose the measure: those named not as its target or destination. None when the
    # producer did not say (an older producer, a push client); [] when the item names no imposing country.
    imposed_by: list[CountryCode] | None = None
    measure: Measure = Measure.NONE
    effective_date: date | None = None
    relevant: bool = False
    score: float = Field(default=0.0, ge=0, le=1)
    evidence: list[str] = Field(default_factory=list)
    classification: Classification = Classification.PUBLIC
    # The supply signal and the figures the item states; None when the producer did not say (an older one).
    topic: Topic | None = None
    leadtime_days: LeadTimeDays | None = None
    price_change_pct: PriceChangePct | None = None
    days_until_in_force: DaysUntilInForce | None = None

    @property
    def occurred_at(self) -> datetime:
        return self.published_at

    def dedup_key(self) -> str:
        return f"{self.item_id}|{self.material}"


class TradeFlowReported(SignalEvent):
    """Imports (or exports) of one material's trade code between two countries over one period."""

    type: ClassVar[str] = "mews.trade.reported.v1"
    kind: ClassVar[str] = "trade"
    source: str = Field(max_length=200)
    reporter: str = Field(max_length=8)  # ISO alpha-2, or EU27
    partner: CountryCode
    hs_code: str = Field(pattern=r"^\d{4,10}$")
    flow: Literal["import", "export"] = "import"
    period: str = Field(pattern=r"^\d{4}(-\d{2})?$")
    quantity_kg: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    value_eur: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    classification: Classification = Classification.PUBLIC

    @property
    def occurred_at(self) -> datetime:
        """The start of the period: a flow is true of its whole period, and is published months after it."""
        return period_start(self.period)

    def dedup_key(self) -> str:
        return f"{self.source}|{self.material}|{self.reporter}|{self.partner}|{self.hs_code}|{self.flow}|{self.period}"


class LeadTimeQuoted(SignalEvent):
    """A quoted delivery lead time for a material from a supplier or origin country."""

    type: ClassVar[str] = "mews.leadtime.quoted.v1"
    kind: ClassVar[str] = "leadtime"
    source: str = Field(max_length=200)
    quoted_at: AwareDatetime
    lead_time_days: float = Field(gt=0, le=3650, allow_inf_nan=False)
    origin_country: CountryCode | None = None
    supplier: str = Field(default="", max_length=200)
    classification: Classification = Classification.PUBLIC

    @property
    def occurred_at(self) -> datetime:
        return self.quoted_at

    def dedup_key(self) -> str:
        return f"{self.source}|{self.material}|{self.supplier}|{self.origin_country}|{_key_time(self.quoted_at)}"


class StockReported(SignalEvent):
    """Tonnes of a material held in stock by one holder on one date (CRMA Art. 23 strategic stocks).

    Stock levels are sensitive: government-only unless the reporter says otherwise.
    """

    type: ClassVar[str] = "mews.stock.reported.v1"
    kind: ClassVar[str] = "stock"
    source: str = Field(max_length=200)
    reported_at: AwareDatetime  # the date the stock was counted
    tonnes: float = Field(ge=0, allow_inf_nan=False)
    holder: str = Field(default="", max_length=200)  # e.g. a national stockpile agency
    classification: Classification = Classification.GOVERNMENT

    @property
    def occurred_at(self) -> datetime:
        return self.reported_at

    def dedup_key(self) -> str:
        return f"{self.source}|{self.material}|{self.holder}|{_key_time(self.reported_at)}"


@dataclass(frozen=True)
class Signal:
    """One kind of supply signal: the event that carries it and the one topic it travels on."""

    event: type[SignalEvent]
    topic: topics.Topic

    @property
    def kind(self) -> str:
        return self.event.kind


# The one table of signal kinds, used by ingest (where to publish), scoring (what each topic holds) and the
# backtest; its order breaks ties of event time in a replay, so a replay is the same however files are listed.
SIGNALS: dict[str, Signal] = {
    s.kind: s
    for s in (
        Signal(PriceObserved, topics.PRICES),
        Signal(TradeFlowReported, topics.TRADE),
        Signal(LeadTimeQuoted, topics.LEADTIMES),
        Signal(NewsReported, topics.NEWS),
        Signal(StockReported, topics.STOCKS),
    )
}


class Evidence(BaseModel):
    """One input that drove a breach."""

    model_config = ConfigDict(frozen=True)
    id: str
    source: str
    kind: str  # price, news, trade, leadtime, stock, indicator
    time: AwareDatetime
    value: float | str | None = None
    url: str = ""
    classification: Classification = Classification.PUBLIC


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class BreachStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class BreachRaised(Event):
    """A rule's threshold crossed (or no longer crossed) for a material, with everything needed to act."""

    type: ClassVar[str] = "mews.breach.v1"
    fingerprint: str
    material: MaterialId
    rule: str
    indicator: str
    severity: Severity
    status: BreachStatus
    value: float
    warning_threshold: float | None = None
    critical_threshold: float | None = None
    clear_threshold: float | None = None
    threshold: float | None = None  # the one crossed (or, on resolve, the clear threshold)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    observed_at: AwareDatetime
    summary: str
    evidence: list[Evidence] = Field(default_factory=list)
    classification: Classification = Classification.PUBLIC
    # The CRMA Art. 20(1) monitoring parameter of the rule (trade_flows, ..., trade_barriers); empty from
    # producers that predate it.
    parameter: str = Field(default="", max_length=40)


class IndicatorSnapshot(Event):
    """The latest indicators of one material."""

    type: ClassVar[str] = "mews.indicators.snapshot.v1"
    material: MaterialId
    as_of: AwareDatetime
    indicators: dict[str, float | None]
    risk_score: float | None = None
    components: dict[str, float] = Field(default_factory=dict)
    export_controls: list[dict[str, Any]] = Field(default_factory=list)
    # The most restricted classification among the inputs the indicators were computed from.
    classification: Classification = Classification.PUBLIC


class DeadLettered(Event):
    """Input that could not be parsed or validated: the reason and the original bytes, nothing lost."""

    type: ClassVar[str] = "mews.deadletter.v1"
    reason: str
    source: str
    stage: str  # ingest, scoring, notify
    intended_topic: str = ""
    original_b64: str
    received_at: AwareDatetime

    @field_validator("reason")
    @classmethod
    def _short_reason(cls, v: str) -> str:
        return v[:2000]

    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)

    @classmethod
    def of(cls, raw: bytes | str, reason: str, *, source: str, stage: str, intended_topic: str = "") -> DeadLettered:
        data = raw.encode() if isinstance(raw, str) else raw
        return cls(
            reason=reason,
            source=source,
            stage=stage,
            intended_topic=intended_topic,
            original_b64=base64.b64encode(data).decode(),
            received_at=datetime.now(UTC),
        )


_EVENTS: tuple[type[Event], ...] = (*(s.event for s in SIGNALS.values()), BreachRaised, IndicatorSnapshot, DeadLettered)
EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in _EVENTS}


class EnvelopeError(ValueError):
    """A message is not a valid CloudEvent carrying a known mews event."""


def to_cloudevent(event: Event, *, source: str, event_id: str | None = None, time: datetime | None = None) -> dict:
    """Wrap an event in a structured-mode CloudEvents 1.0 envelope."""
    envelope = {
        "specversion": SPECVERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event.type,
        "time": (time or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
        "data": event.model_dump(mode="json"),
    }
    subject = event.subject()
    if subject:
        envelope["subject"] = subject
    return envelope


_quote = json.encoder.encode_basestring_ascii  # a JSON string as json.dumps writes it (C, ASCII-safe)


def encode(event: Event, *, source: str, event_id: str | None = None, written_at: str | None = None) -> bytes:
    """The bytes put on Kafka for an event: `to_cloudevent` as compact JSON.

    `written_at` is the CloudEvents time as ISO text (default: now); a caller encoding a batch passes one for
    all of it, since reading and formatting the clock is a third of the cost of encoding a price.

    The event is written by pydantic's own serializer instead of `json.dumps(model_dump(mode="json"))`, at a
    fifth of the cost (ingest encodes every item it publishes). The envelope is the same, key for key; the
    text may differ from json.dumps only in how a float below 1e-4 is spelled ("0.00001", not "1e-05") and in
    DEL (0x7f) being left unescaped: any JSON reader decodes both to the same values.
    """
    # Only the id and the data differ from one event of a batch to the next: the rest is written once.
    return b"".join(
        (
            _ID_OPENING,
            _quote(event_id or str(uuid.uuid4())).encode(),
            _after_id(source, event.type, written_at or datetime.now(UTC).isoformat()),
            event.__pydantic_serializer__.to_json(event, ensure_ascii=True),
            _closing(event.subject()),
        )
    )


_ID_OPENING = f'{{"specversion":"{SPECVERSION}","id":'.encode()


@functools.lru_cache(maxsize=64)  # one source per producer, a few event types, one time per batch
def _after_id(source: str, event_type: str, written_at: str) -> bytes:
    return (
        f',"source":{_quote(source)},"type":{_quote(event_type)},"time":"{written_at}",'
        f'"datacontenttype":"application/json","data":'
    ).encode()


@functools.lru_cache(maxsize=4096)  # subjects are material ids: few
def _closing(subject: str) -> bytes:
    return f',"subject":{_quote(subject)}}}'.encode() if subject else b"}"


_E = TypeVar("_E", bound=Event)


@overload
def decode(raw: bytes | str, expected: type[_E]) -> tuple[dict, _E]: ...
@overload
def decode(raw: bytes | str, expected: None = None) -> tuple[dict, Event]: ...


def decode(raw: bytes | str, expected: type[Event] | None = None) -> tuple[dict, Event]:
    """Parse and validate a CloudEvent; return the envelope and the typed event, or raise EnvelopeError."""
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise EnvelopeError("envelope is not a JSON object")
    missing = [k for k in ("specversion", "id", "source", "type", "data") if k not in envelope]
    if missing:
        raise EnvelopeError(f"envelope lacks {', '.join(missing)}")
    if envelope["specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported specversion {envelope['specversion']!r}")
    cls = EVENT_TYPES.get(envelope["type"])
    if cls is None:
        raise EnvelopeError(f"unknown event type {envelope['type']!r}")
    if expected is not None and cls is not expected:
        raise EnvelopeError(f"expected {expected.type}, got {envelope['type']}")
    data = envelope["data"]
    if isinstance(data, dict) and not data.keys() <= cls.model_fields.keys():
        # Fields may be added (the module's rule): a newer producer's are ignored, so a rolling deploy never
        # dead-letters. Our own producers cannot add a typo: the models refuse unknown fields when built.
        ignored = sorted(data.keys() - cls.model_fields.keys())
        FIELDS_IGNORED.labels(cls.type).inc(len(ignored))
        _log_ignored_once(cls.type, tuple(ignored))
        data = {k: v for k, v in data.items() if k in cls.model_fields}
    try:
        return envelope, cls.model_validate(data)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid {cls.type}: {describe_validation_error(exc)}") from exc


FIELDS_IGNORED = Counter(
    "mews_event_fields_ignored_total",
    "Fields of consumed events this version does not know (a newer producer's), ignored",
    ["type"],
)


@functools.lru_cache(maxsize=256)  # one line per set of fields, not one per event
def _log_ignored_once(event_type: str, fields: tuple[str, ...]) -> None:
    log.warning(
        "consumed events carry fields this version does not know; ignored",
        extra={"event_type": event_type, "fields": list(fields)[:20]},
    )


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line, human reason from a pydantic error: which field, what is wrong."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "item"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
