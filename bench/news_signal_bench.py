"""The price path of a material with supply-signal news in its 30-day window, against one without any.

A price moves the watermark, and the news indicators (`news_signals_30d` and the rest) slide with it, so every
price of a material with news is scored with them. The bench replays the same prices through the engine
(`apply_event_in_place`, as the backtest does) for a material whose window holds `--signals` items and for one
that has none, in the same run, and prints prices per CPU second of both and their ratio (medians of `--runs`).
There is no `--against`: code before the news signals rejects such items, so it has no figure to compare.

Run: .venv/bin/python bench/news_signal_bench.py [--runs 3] [--prices 20000] [--signals 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.scoring.config import load_config  # noqa: E402
from services.scoring.engine import apply_event_in_place  # noqa: E402
from shared.events import Event, NewsReported, PriceObserved, Topic  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TOPICS = (Topic.PRICE, Topic.LEADTIME, Topic.PRODUCTION, Topic.STOCKPILE, Topic.TARIFF, Topic.TRADE_VOLUME)


def workload(prices: int, signals: int) -> tuple[list[Event], list[Event]]:
    """The news items (published within the first day) and the prices (a minute apart, from day 5)."""
    news: list[Event] = [
        NewsReported(
            material="cobalt",
            item_id=f"n{i}",
            source="bench",
            title=f"Cobalt supply news {i}",
            published_at=T0 + timedelta(minutes=10 * i),
            relevant=True,
            topic=TOPICS[i % len(TOPICS)],
            leadtime_days=120 if TOPICS[i % len(TOPICS)] == Topic.LEADTIME else None,
        )
        for i in range(signals)
    ]
    quotes: list[Event] = [
        PriceObserved(
            material="cobalt",
            source="bench",
            observed_at=T0 + timedelta(days=5, minutes=i),
            price=30000.0 + (i % 13),
            currency="USD",
            unit="t",
        )
        for i in range(prices)
    ]
    return news, quotes


def replay(news: list[Event], prices: list[Event]) -> float:
    """CPU seconds the prices take after the news items are in the state."""
    config = load_config()
    state = None
    for i, event in enumerate(news):
        state = apply_event_in_place(state, event, event_id=f"n-{i}", config=config).state
    start = time.process_time()
    for i, event in enumerate(prices):
        state = apply_event_in_place(state, event, event_id=f"p-{i}", config=config).state
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prices", type=int, default=20000)
    parser.add_argument("--signals", type=int, default=100)
    args = parser.parse_args()
    news, prices = workload(args.prices, args.signals)
    bare, with_news = [], []
    for _ in range(args.runs):
        bare.append(replay([], prices))
        with_news.append(replay(news, prices))
    b, w = statistics.median(bare), statistics.median(with_news)
    print(
        f"workload: {args.prices:,} prices of one material, a minute apart; {args.signals} supply-signal items "
        f"in its 30-day window (medians of {args.runs} runs)"
    )
    print(f"without news: {args.prices / b:,.0f} prices per CPU second; runs: {', '.join(f'{x:.3f}' for x in bare)} s")
    print(
        f"with news:    {args.prices / w:,.0f} prices per CPU second; runs: "
        f"{', '.join(f'{x:.3f}' for x in with_news)} s"
    )
    print(f"with/without: {b / w:.2f}x the speed")


if __name__ == "__main__":
    main()
