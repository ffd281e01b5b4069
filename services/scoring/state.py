"""Everything scoring remembers about one material (`MaterialState`), its JSON form, and the reads over it.

The state is small and made of plain values; `apply.py` changes it, one input at a time. Event time is epoch
seconds UTC throughout; the watermark is the newest event time a material has seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from services.scoring.config import PriceParams
from services.scoring.indicators.controls import ExportControl
from services.scoring.indicators.news import NewsSignal
from services.scoring.indicators.rolling import ReturnWindows
from services.scoring.indicators.volatility import log_returns, price_indicators, prices_needed
from services.scoring.rules import RuleState
from shared.events import period_start

DAY = 86400.0
_Record = TypeVar("_Record")


# --- state ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceSeries:
    """One price series (source and series name) of a material, sorted by event time, bounded.

    The lists are changed only by `add`, on a series no earlier state shares (see `apply_event`).
    """

    source: str
    series: str
    t: list[float] = field(default_factory=list)
    p: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    cls: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    # r[i] = log(p[i] / p[i-1]), kept so an observation costs one logarithm, not a window of them. r[0] has no
    # predecessor in the series (NaN, or the return from a price since dropped) and is never read. Derived:
    # not serialised, rebuilt on load.
    r: list[float] = field(default_factory=list, compare=False, repr=False)
    # Running sums over r that give the price indicators in O(1) per observation. Derived like r.
    windows: ReturnWindows = field(default_factory=ReturnWindows, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "series": self.series,
            "t": list(self.t),
            "p": list(self.p),
            "ids": list(self.ids),
            "cls": list(self.cls),
            "urls": list(self.urls),
        }

    @classmethod
    def from_dict(cls, d: dict) -> PriceSeries:
        t, p = list(d["t"]), list(d["p"])
        r = [math.nan, *log_returns(p)]
        return cls(
            d["source"],
            d["series"],
            t,
            p,
            list(d["ids"]),
            list(d["cls"]),
            list(d["urls"]),
            r,
            ReturnWindows(deferred=True),
        )

    def copy(self) -> PriceSeries:
        """A series with lists of its own, to change without touching this one."""
        return PriceSeries(
            self.source,
            self.series,
            self.t.copy(),
            self.p.copy(),
            self.ids.copy(),
            self.cls.copy(),
            self.urls.copy(),
            self.r.copy(),
            self.windows.copy(),
        )

    def add(self, i: int, t: float, price: float, event_id: str, classification: str, url: str, limit: int) -> None:
        """Insert one observation at index i (keeping time order), forgetting the oldest beyond `limit`."""
        n = len(self.p)
        if i == n:  # the usual case: the newest price
            self.r.append(math.log(price / self.p[i - 1]) if i > 0 else math.nan)
            self.t.append(t)
            self.p.append(price)
            self.ids.append(event_id)
            self.cls.append(classification)
            self.urls.append(url)
            self.windows.appended(self.t, self.r)
        else:
            # Inserted before later prices: the next price's return is now measured from this one.
            self.r[i] = math.log(self.p[i] / price)
            self.r.insert(i, math.log(price / self.p[i - 1]) if i > 0 else math.nan)
            self.t.insert(i, t)
            self.p.insert(i, price)
            self.ids.insert(i, event_id)
            self.cls.insert(i, classification)
            self.urls.insert(i, url)
            self.windows.inserted(self.t, self.r, i)
        excess = n + 1 - limit
        if excess > 0:
            for items in (self.t, self.p, self.ids, self.cls, self.urls, self.r):
                del items[:excess]
            self.windows.trimmed(excess, self.t)

    def returns(self, prices: int) -> list[float]:
        """The log returns between the latest `prices` prices (as `log_returns(p[-prices:])` would give)."""
        return self.r[max(1, len(self.r) - prices + 1) :]


@dataclass(frozen=True)
class Quote:
    """One lead-time quote as kept in state."""

    t: float
    days: float
    origin: str
    supplier: str
    source: str
    id: str
    cls: str

    def to_list(self) -> list:
        return [self.t, self.days, self.origin, self.supplier, self.source, self.id, self.cls]


@dataclass(frozen=True)
class Flow:
    """One trade flow of one period as kept in state."""

    partner: str
    flow: str
    hs_code: str
    quantity_kg: float | None
    value_eur: float | None
    source: str
    id: str
    cls: str
    t: float

    def to_list(self) -> list:
        return [
            self.partner,
            self.flow,
            self.hs_code,
            self.quantity_kg,
            self.value_eur,
            self.source,
            self.id,
            self.cls,
            self.t,
        ]


@dataclass(frozen=True)
class Stock:
    """The latest stock report of one holder as kept in state."""

    t: float
    tonnes: float
    holder: str
    source: str
    id: str
    cls: str

    def to_list(self) -> list:
        return [self.t, self.tonnes, self.holder, self.source, self.id, self.cls]


@dataclass
class MaterialState:
    """Everything scoring remembers about one material; compact and JSON-serialisable via to_dict().

    Not frozen, because it is changed in place: a driver that owns its states (the live worker, the backtest)
    applies every input to them with `apply_event_in_place`, since copying the state per input was what made
    scoring slow. `apply_event` never changes a state it is given; it copies what it changes. `_change` and
    `_evolve` below are where the two paths part, and the caches are the only other fields written in place.
    """

    material: str
    watermark: float | None = None  # newest event time seen, epoch seconds UTC
    series: dict[str, PriceSeries] = field(default_factory=dict)  # "source|series" -> series
    active_series: str | None = None  # the series of the newest price: the one price indicators describe
    quotes: tuple[Quote, ...] = ()
    flows: dict[str, tuple[Flow, ...]] = field(default_factory=dict)  # period -> flows
    controls: dict[str, ExportControl] = field(default_factory=dict)
    news_keys: tuple[str, ...] = ()
    rules: dict[str, RuleState] = field(default_factory=dict)
    indicators: dict[str, dict[str, float | None]] = field(default_factory=dict)  # group -> indicators
    seen_ids: list[str] = field(default_factory=list)
    stocks: tuple[Stock, ...] = ()  # the latest report of each holder
    news_signals: tuple[NewsSignal, ...] = ()  # supply-signal news other than export controls, by time
    # Caches of derived values kept by apply.py, neither serialised nor compared. Each holds what it was computed
    # from, so a copy that shares it (see `_evolve`) can tell when it is stale.
    _estimate: tuple | None = field(default=None, init=False, repr=False, compare=False)  # see _settled
    _news: tuple | None = field(default=None, init=False, repr=False, compare=False)  # see apply._news_group
    _seen: tuple | None = field(default=None, init=False, repr=False, compare=False)  # see apply._seen_set

    def flat_indicators(self) -> dict[str, float | None]:
        """Every indicator of every group in one mapping."""
        return _flat(_settled(self))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (only lists, dicts, strings, numbers and None)."""
        return {
            "v": 1,
            "material": self.material,
            "watermark": self.watermark,
            "series": {k: s.to_dict() for k, s in self.series.items()},
            "active_series": self.active_series,
            "quotes": [q.to_list() for q in self.quotes],
            "flows": {p: [f.to_list() for f in fs] for p, fs in self.flows.items()},
            "controls": {k: c.to_dict() for k, c in self.controls.items()},
            "news_keys": list(self.news_keys),
            "rules": {k: r.to_dict() for k, r in self.rules.items()},
            "indicators": {g: dict(v) for g, v in _settled(self).items()},
            "seen_ids": list(self.seen_ids),
            # Only when there are stocks, so states without them keep the form they always had.
            **({"stocks": [s.to_list() for s in self.stocks]} if self.stocks else {}),
            **({"news_signals": [n.to_list() for n in self.news_signals]} if self.news_signals else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MaterialState:
        """The state from its to_dict() form."""
        return cls(
            material=d["material"],
            watermark=d.get("watermark"),
            series={k: PriceSeries.from_dict(s) for k, s in d.get("series", {}).items()},
            active_series=d.get("active_series"),
            quotes=tuple(Quote(*q) for q in d.get("quotes", [])),
            flows={p: tuple(Flow(*f) for f in fs) for p, fs in d.get("flows", {}).items()},
            controls={k: ExportControl.from_dict(c) for k, c in d.get("controls", {}).items()},
            news_keys=tuple(d.get("news_keys", [])),
            rules={k: RuleState.from_dict(r) for k, r in d.get("rules", {}).items()},
            indicators={g: dict(v) for g, v in d.get("indicators", {}).items()},
            seen_ids=list(d.get("seen_ids", [])),
            stocks=tuple(Stock(*s) for s in d.get("stocks", [])),
            news_signals=tuple(NewsSignal(*n) for n in d.get("news_signals", [])),
        )


def _evolve(state: _Record, **changes: Any) -> _Record:
    """A copy of a state (or series) with some fields changed (dataclasses.replace without its per-call overhead).

    Through `__dict__`, which also works on the frozen series and copies the caches with the state."""
    new = object.__new__(type(state))
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


def _change(state: MaterialState, own: bool, **changes: Any) -> MaterialState:
    """The state with some fields changed: in place when the caller owns it (`apply_event_in_place`), otherwise a
    copy (`apply_event`)."""
    if own:
        state.__dict__.update(changes)
        return state
    return _evolve(state, **changes)


# --- time and periods --------------------------------------------------------------------------------


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _as_of_date(state: MaterialState) -> date:
    return _dt(state.watermark or 0.0).date()


def trade_window(flows: dict[str, tuple[Flow, ...]], months: int) -> list[str]:
    """The periods the dependency indicators use: the latest year, or the latest `months` monthly periods."""
    if not flows:
        return []
    latest = max(flows, key=lambda p: (period_start(p), len(p)))
    if len(latest) == 4:
        return [latest]
    ly, lm = int(latest[:4]), int(latest[5:7])
    first = ly * 12 + lm - months  # exclusive lower bound in months
    return sorted(p for p in flows if len(p) == 7 and first < int(p[:4]) * 12 + int(p[5:7]) <= ly * 12 + lm)


# --- stored indicators ------------------------------------------------------------------------------------


def _exact_price_group(s: PriceSeries, p: PriceParams) -> dict[str, float | None]:
    """The price group from the reference functions, every window recomputed."""
    need = prices_needed(
        volatility_window=p.volatility_window,
        ewma_window=p.ewma_window,
        long_window=p.long_window,
        jump_window=p.jump_window,
    )
    return price_indicators(
        s.t,
        s.p,
        volatility_window=p.volatility_window,
        ewma_lambda=p.ewma_lambda,
        ewma_window=p.ewma_window,
        short_window=p.short_window,
        long_window=p.long_window,
        jump_window=p.jump_window,
        jump_min_returns=p.jump_min_returns,
        jump_sd_floor=p.jump_sd_floor,
        returns=s.returns(need),
    )


def _settled(state: MaterialState) -> dict[str, dict[str, float | None]]:
    """The state's indicator groups, an estimated price group replaced by its reference values."""
    groups = state.indicators
    estimate = state._estimate
    if estimate is not None and estimate[0] is groups.get("price"):
        # A cache fill, not a change: the estimate stands for exactly these values. Series an estimate refers
        # to are never changed without a new price group (apply_event copies them first).
        groups["price"] = _exact_price_group(estimate[1], estimate[2])
    return groups


def _is_estimated(state: MaterialState) -> bool:
    estimate = state._estimate
    return estimate is not None and estimate[0] is state.indicators.get("price")


def _flat(groups: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    get = groups.get
    return {
        **get("price", _NONE),
        **get("leadtime", _NONE),
        **get("trade", _NONE),
        **get("controls", _NONE),
        **get("stock", _NONE),
        **get("news", _NONE),
    }


_NONE: dict[str, float | None] = {}
