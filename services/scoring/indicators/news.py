"""Supply-signal news other than export controls: how many items, of which topic, and the figures they state.

A news item about a price shock, a lead time, a production cut, a stockpile, a tariff or an export volume is a
qualitative signal: one item says little, several within a month about one material say its supply is under
strain. The figures an item states (a lead time, a price move) are reported as stated, with the item as source.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from shared.events import Topic

# Every topic but export controls (scored as controls in force) and none.
SIGNAL_TOPICS = frozenset(
    {Topic.PRICE, Topic.LEADTIME, Topic.PRODUCTION, Topic.STOCKPILE, Topic.TARIFF, Topic.TRADE_VOLUME}
)
SIGNAL_TOPIC_NAMES = tuple(sorted(t.value for t in SIGNAL_TOPICS))
WINDOW_DAYS = 30
WINDOW_SECONDS = WINDOW_DAYS * 86400.0
COUNT = f"news_signals_{WINDOW_DAYS}d"


@dataclass(frozen=True)
class NewsSignal:
    """One supply-signal news item as kept in state."""

    t: float  # publication time, epoch seconds UTC
    topic: str
    key: str  # the item's dedup key
    title: str
    url: str
    source: str
    id: str  # the event id
    cls: str
    leadtime_days: float | None = None
    price_change_pct: float | None = None

    def to_list(self) -> list:
        return [
            self.t,
            self.topic,
            self.key,
            self.title,
            self.url,
            self.source,
            self.id,
            self.cls,
            self.leadtime_days,
            self.price_change_pct,
        ]

    def describe(self) -> str:
        """The item as breach evidence names it: 'leadtime, lead time 126 days: <title>'."""
        figures = []
        if self.leadtime_days is not None:
            figures.append(f"lead time {self.leadtime_days:g} days")
        if self.price_change_pct is not None:
            figures.append(f"price {self.price_change_pct:+g}%")
        return f"{', '.join((self.topic, *figures))}: {self.title}"


def recent(signals: Sequence[NewsSignal], at: float, window: float = WINDOW_SECONDS) -> Sequence[NewsSignal]:
    """The signals published within `window` seconds up to `at` (signals are in time order)."""
    start = bisect_right(signals, at - window, key=lambda n: n.t)
    end = bisect_right(signals, at, key=lambda n: n.t)
    return signals[start:end]


def news_signal_indicators(
    signals: Sequence[NewsSignal], at: float, window: float = WINDOW_SECONDS
) -> dict[str, float | None]:
    """Items in the window, in all and by topic; the latest lead time and price move stated in it (or None)."""
    items = recent(signals, at, window)
    out: dict[str, float | None] = {COUNT: float(len(items))}
    for topic in SIGNAL_TOPIC_NAMES:
        out[f"{COUNT}.{topic}"] = float(sum(1 for n in items if n.topic == topic))
    leadtime = latest_stating(items, "leadtime_days")
    price = latest_stating(items, "price_change_pct")
    out["news_leadtime_days"] = None if leadtime is None else leadtime.leadtime_days
    out["news_price_change_pct"] = None if price is None else price.price_change_pct
    return out


def window_changes_at(signals: Sequence[NewsSignal], at: float, window: float = WINDOW_SECONDS) -> float:
    """The watermark from which the window holds other items without a new one: when its oldest item leaves it."""
    items = recent(signals, at, window)
    return items[0].t + window if items else math.inf


def latest_stating(items: Sequence[NewsSignal], figure: str) -> NewsSignal | None:
    """The newest item that states a figure ('leadtime_days' or 'price_change_pct')."""
    return next((n for n in reversed(items) if getattr(n, figure) is not None), None)


def news_evidence(
    signals: Sequence[NewsSignal], indicator: str, at: float, limit: int, window: float = WINDOW_SECONDS
) -> list[NewsSignal]:
    """The items behind a news indicator, newest first: those counted, or those stating the figure."""
    items = recent(signals, at, window)
    if indicator in ("news_leadtime_days", "news_price_change_pct"):
        figure = indicator.removeprefix("news_")
        return [n for n in reversed(items) if getattr(n, figure) is not None][:limit]
    topic = indicator.partition(".")[2]
    return [n for n in reversed(items) if not topic or n.topic == topic][:limit]
