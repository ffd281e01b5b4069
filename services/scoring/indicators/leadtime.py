"""Lead-time indicators: latest quote, rolling-median baseline, ratio to baseline, least-squares trend."""

from __future__ import annotations

import math
from collections.abc import Sequence

DAY = 86400.0


def median(values: Sequence[float]) -> float | None:
    """The median of values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def trend_days_per_30d(times: Sequence[float], values: Sequence[float]) -> float | None:
    """Ordinary least-squares slope of lead time against time, in days of lead time per 30 days."""
    n = len(times)
    if n < 2:
        return None
    mt = math.fsum(times) / n
    mv = math.fsum(values) / n
    sxx = math.fsum((t - mt) ** 2 for t in times)
    if sxx == 0:
        return None
    sxy = math.fsum((t - mt) * (v - mv) for t, v in zip(times, values, strict=True))
    return sxy / sxx * 30 * DAY


def leadtime_indicators(
    quotes: Sequence[tuple[float, float, str]], *, baseline_days: float, trend_days: float
) -> dict[str, float | None]:
    """Indicators from lead-time quotes `(time, days, origin)` sorted by time; origin "" when unknown.

    The baseline is the median of the quotes in the `baseline_days` before the latest quote (the latest
    excluded, so a jump is measured against what came before it); the trend is fitted to the quotes of the
    last `trend_days`, the latest included.
    """
    out: dict[str, float | None] = {
        "leadtime_days": None,
        "leadtime_baseline_days": None,
        "leadtime_ratio": None,
        "leadtime_trend_days_per_30d": None,
    }
    if not quotes:
        return out
    latest_t, latest_days, _ = quotes[-1]
    out["leadtime_days"] = latest_days
    earlier = [d for t, d, _ in quotes[:-1] if t >= latest_t - baseline_days * DAY]
    base = median(earlier)
    out["leadtime_baseline_days"] = base
    out["leadtime_ratio"] = latest_days / base if base else None
    recent = [(t, d) for t, d, _ in quotes if t >= latest_t - trend_days * DAY]
    out["leadtime_trend_days_per_30d"] = trend_days_per_30d([t for t, _ in recent], [d for _, d in recent])
    latest_by_origin: dict[str, float] = {}
    for _, d, origin in quotes:
        if origin:
            latest_by_origin[origin] = d
    for origin in sorted(latest_by_origin):
        out[f"leadtime_days.{origin}"] = latest_by_origin[origin]
    return out
