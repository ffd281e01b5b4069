"""Price indicators: changes, realised and EWMA volatility, volatility ratio and jump z-score."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

DAY = 86400.0

# Trading periods per year used to annualise a per-period volatility (RiskMetrics convention).
PERIODS_PER_YEAR = {"daily": 252, "weekly": 52, "monthly": 12}


def infer_frequency(times: Sequence[float]) -> str:
    """Daily, weekly or monthly, from the median spacing (in days) of observation times."""
    recent = times[-21:]  # the last 20 gaps say how the series is sampled now
    return frequency_of_gaps(sorted(b - a for a, b in zip(recent, recent[1:], strict=False)))


def frequency_of_gaps(gaps: Sequence[float]) -> str:
    """Daily, weekly or monthly, from the sorted gaps (seconds) between observation times."""
    if not gaps:
        return "daily"
    mid = len(gaps) // 2
    median = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    # Daily series skip weekends (gaps of 1 and 3 days); weekly ones are 7 apart; monthly 28-31.
    if median <= 4 * DAY:
        return "daily"
    if median <= 12 * DAY:
        return "weekly"
    return "monthly"


def log_returns(prices: Sequence[float]) -> list[float]:
    """Log returns between consecutive prices (prices are positive by contract)."""
    return [math.log(b / a) for a, b in zip(prices, prices[1:], strict=False)]


def sample_sd(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1 denominator); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum([(v - mean) ** 2 for v in values]) / (n - 1))


def realised_volatility(returns: Sequence[float], periods_per_year: int) -> float | None:
    """Annualised realised volatility: sample sd of log returns times sqrt(periods per year)."""
    sd = sample_sd(returns)
    return None if sd is None else sd * math.sqrt(periods_per_year)


def ewma_volatility(log_returns: Sequence[float], lam: float = 0.94) -> float | None:
    """RiskMetrics EWMA of squared returns; returns per-period volatility.

    sigma2_t = lam * sigma2_{t-1} + (1 - lam) * r_t^2, seeded with the first squared return
    (J.P. Morgan/Reuters, RiskMetrics Technical Document, 4th ed., 1996, section 5.2).
    """
    if not log_returns:
        return None
    var = log_returns[0] ** 2
    for r in log_returns[1:]:
        var = lam * var + (1.0 - lam) * r * r
    return math.sqrt(var)


def volatility_ratio(returns: Sequence[float], short: int, long: int) -> float | None:
    """Realised volatility of the last `short` returns over that of the last `long` returns."""
    if len(returns) < long or short < 2:
        return None
    s = sample_sd(returns[-short:])
    lg = sample_sd(returns[-long:])
    if s is None or not lg:
        return None
    return s / lg


def jump_zscore(returns: Sequence[float], window: int, minimum: int = 10, sd_floor: float = 0.0) -> float | None:
    """The latest return against the mean and sd of up to `window` earlier returns, the sd at least `sd_floor`.

    A nearly flat history has a tiny sd, and any move then looks like dozens of sd; the floor (per period)
    keeps such a z-score at the size of the move itself. None when there are fewer than `minimum` earlier
    returns, or when they do not vary and there is no floor (a z-score is undefined).
    """
    if len(returns) < minimum + 1:
        return None
    earlier = returns[-window - 1 : -1]
    sd = sample_sd(earlier)
    if sd is None:
        return None
    sd = max(sd, sd_floor)
    if not sd:
        return None
    mean = math.fsum(earlier) / len(earlier)
    return (returns[-1] - mean) / sd


def change_tolerance(days: float) -> float:
    """How far (seconds) a reference observation may lie from the target time: half the horizon, at least 3 days."""
    return max(3.0, days / 2.0) * DAY


def price_change_pct(times: Sequence[float], prices: Sequence[float], days: float) -> float | None:
    """Percent change of the latest price against the earlier price observed closest to `days` before it.

    The reference must lie within `change_tolerance(days)` of the target time, so a monthly series has a
    30-day change but no 1-day change, and a daily series on a Monday compares with the Friday.
    """
    return price_changes(times, prices, (days,))[0]


CHANGE_DAYS = (1, 7, 30)  # the horizons of price_indicators
_TOLERANCE: dict[float, float] = {d: change_tolerance(d) for d in CHANGE_DAYS}


def price_changes(
    times: Sequence[float], prices: Sequence[float], horizons: Sequence[float] = CHANGE_DAYS
) -> list[float | None]:
    """`price_change_pct` for each horizon (days), in one pass."""
    last = len(times) - 1
    if last < 1:
        return [None] * len(horizons)
    latest_t, latest_p = times[-1], prices[-1]
    out: list[float | None] = []
    for days in horizons:
        target = latest_t - days * DAY
        i = bisect_left(times, target, 0, last)
        # Candidates are the neighbours of the target among the earlier observations; ties go to the earlier one.
        best, best_dist = (i - 1, abs(times[i - 1] - target)) if i > 0 else (-1, math.inf)
        if i < last:
            dist = abs(times[i] - target)
            if dist < best_dist:
                best, best_dist = i, dist
        tol = _TOLERANCE.get(days)
        if tol is None:
            tol = change_tolerance(days)
        out.append(None if best < 0 or best_dist > tol else (latest_p / prices[best] - 1.0) * 100.0)
    return out


def prices_needed(*, volatility_window: int, ewma_window: int, long_window: int, jump_window: int) -> int:
    """How many of the latest prices the return-based indicators look at."""
    return max(volatility_window, ewma_window, long_window, jump_window + 1) + 1


def price_indicators(
    times: Sequence[float],
    prices: Sequence[float],
    *,
    volatility_window: int,
    ewma_lambda: float,
    ewma_window: int,
    short_window: int,
    long_window: int,
    jump_window: int,
    jump_min_returns: int = 10,
    jump_sd_floor: float = 0.0,
    returns: Sequence[float] | None = None,
) -> dict[str, float | None]:
    """Every price indicator of one series sorted by time.

    `jump_sd_floor` is an annualised volatility; the jump z-score's sd is at least its per-period equivalent.
    `returns`, when the caller keeps them, must be `log_returns` of the latest `prices_needed(...)` prices;
    passing them saves recomputing a hundred logarithms per observation.
    """
    need = prices_needed(
        volatility_window=volatility_window, ewma_window=ewma_window, long_window=long_window, jump_window=jump_window
    )
    if returns is None:
        returns = log_returns(prices[-need:])
    freq = infer_frequency(times[-need:])
    ppy = PERIODS_PER_YEAR[freq]
    ewma = ewma_volatility(returns[-ewma_window:], ewma_lambda)
    day, week, month = price_changes(times, prices)
    return {
        "price": prices[-1] if prices else None,
        "price_change_1d_pct": day,
        "price_change_7d_pct": week,
        "price_change_30d_pct": month,
        "price_volatility": realised_volatility(returns[-volatility_window:], ppy),
        "price_volatility_ewma": None if ewma is None else ewma * math.sqrt(ppy),
        "price_volatility_ratio": volatility_ratio(returns, short_window, long_window),
        "price_jump_z": jump_zscore(returns, jump_window, jump_min_returns, jump_sd_floor / math.sqrt(ppy)),
        "price_periods_per_year": float(ppy),
    }
