"""Backtest throughput: ten years of daily prices for forty materials (seeded), replayed through the engine.

Prints the median wall time over a few runs and events per second. Run: .venv/bin/python bench/backtest_bench.py
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.scoring.backtest import ReadReport, _input, merge_inputs, replay  # noqa: E402
from services.scoring.config import load_config  # noqa: E402
from shared.events import PriceObserved  # noqa: E402

MATERIALS = 40
YEARS = 10
RUNS = 3


def generate(seed: int = 20240601) -> ReadReport:
    """Business-day prices as geometric Brownian motion with occasional jumps, one series per material."""
    rng = random.Random(seed)
    report = ReadReport()
    start = datetime(2014, 1, 1, tzinfo=UTC)
    days = [start + timedelta(days=d) for d in range(YEARS * 365) if (start + timedelta(days=d)).weekday() < 5]
    for m in range(MATERIALS):
        material = f"material-{m:02d}"
        price = rng.uniform(5, 5000)
        sigma = rng.uniform(0.15, 0.6) / math.sqrt(252)
        for day in days:
            jump = rng.gauss(0, 8 * sigma) if rng.random() < 0.002 else 0.0
            price *= math.exp(rng.gauss(0, sigma) + jump)
            report.inputs.append(_input(PriceObserved(material=material, source="bench", observed_at=day,
                                                      price=price, currency="USD", unit="t", series="spot")))
    return report


def main() -> None:
    t0 = time.perf_counter()
    report = generate()
    print(f"generated {len(report.inputs):,} price events ({MATERIALS} materials x {YEARS} years of business days) "
          f"in {time.perf_counter() - t0:.1f} s")
    config = load_config()
    walls = []
    breaches = 0
    for _ in range(RUNS):
        t0 = time.perf_counter()
        inputs = merge_inputs([report])
        result = replay(inputs, config)
        walls.append(time.perf_counter() - t0)
        breaches = len(result.breaches)
    wall = statistics.median(walls)
    n = len(report.inputs)
    print(f"replay (merge + apply_event) over {RUNS} runs: median {wall:.2f} s, {n / wall:,.0f} events/s, "
          f"{breaches} breach events; runs: {', '.join(f'{w:.2f}' for w in walls)} s")


if __name__ == "__main__":
    main()
