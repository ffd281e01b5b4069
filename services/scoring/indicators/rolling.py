"""The price indicators of one series kept up to date one observation at a time.

`volatility.py` defines the indicators and stays the reference: every window is recomputed from its values.
`ReturnWindows` gives the same indicators in O(1) per appended observation from

- exact prefix sums of the log returns and of their squares, in integers: a log return of two doubles is 0
  or at least about 2**-53 in size, so a multiple of 2**-106; scaled by 2**110 the returns are integers and the
  sums of any window are exact (a return that is not, say an infinite one, leaves the series to the reference
  functions). A window's sample variance is then one correctly rounded division, with no drift however long
  the series runs;
- a windowed RiskMetrics EWMA updated by one multiply-add (and the removal of the return that leaves the
  window), with a running bound on its rounding error; past 1e-13 of its value the sum is recomputed from
  its window, so the error never accumulates;
- the last 20 gaps between observation times, kept sorted, for the frequency (median gap).

The results are estimates of the reference values within `ESTIMATE_RTOL` (relative), not copies of their
bits: the reference sums in a different order. Where the two could differ by more (a window whose returns are
all equal but not zero, or whose mean dwarfs its spread), the reference function computes that window.
An insert before the last observation recomputes the prefix sums from the insert point and the EWMA from its
window (late inserts are rare); dropping the oldest observations costs nothing.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.scoring.indicators.volatility import (
    PERIODS_PER_YEAR,
    frequency_of_gaps,
    price_changes,
    sample_sd,
)

if TYPE_CHECKING:
    from services.scoring.config import PriceParams

# |estimate - reference| <= ESTIMATE_RTOL * |reference| for every estimated indicator (the property tests check it).
ESTIMATE_RTOL = 1e-10
ESTIMATED = ("price_volatility", "price_volatility_ewma", "price_volatility_ratio", "price_jump_z")

_SHIFT = 110  # fixed point of the exact sums (see the module docstring)
_SCALE = 2.0**_SHIFT
_UNIT = 2.0**-53  # unit roundoff of a double
_EWMA_RTOL = 1e-13  # recompute the EWMA sum from its window when its error bound passes this share of it
_KAPPA_MAX = 10**10  # mean^2 / variance beyond which a window's reference sd is itself inaccurate
_GAPS = 20  # the gaps `infer_frequency` looks at


def _recent_gaps(times: Sequence[float]) -> list[float]:
    recent = times[-_GAPS - 1 :]
    return sorted(b - a for a, b in zip(recent, recent[1:], strict=False))


class ReturnWindows:
    """Running sums over the log returns r[1:] of one series (r[0] has no predecessor and is never read).

    `s1[i] - s1[j]` is the exact sum of the returns r[j+1..i] scaled by 2**110, `s2` the same for their squares.
    The owner calls `appended`, `inserted` or `trimmed` after changing its lists, with the lists. Windows made
    with `deferred=True` (of a series just loaded) are built from the lists when first read.
    """

    __slots__ = ("_ewma", "built", "exact", "gaps", "s1", "s2")

    def __init__(self, times: Sequence[float] = (), returns: Sequence[float] = (), *, deferred: bool = False) -> None:
        self.rebuild(times, returns)
        self.built = not deferred

    def rebuild(self, times: Sequence[float], returns: Sequence[float]) -> None:
        """Everything from the series itself."""
        self.s1: list[int] = []
        self.s2: list[int] = []
        self.exact = True
        self._extend(returns, 0)
        self.gaps = _recent_gaps(times)
        self._ewma: list | None = None  # [lam, window, weight of the leaving return, sum, count, error bound]

    def copy(self) -> ReturnWindows:
        new = object.__new__(ReturnWindows)
        new.s1, new.s2, new.exact, new.gaps = self.s1.copy(), self.s2.copy(), self.exact, self.gaps.copy()
        new.built = self.built
        new._ewma = None if self._ewma is None else self._ewma.copy()
        return new

    def _extend(self, returns: Sequence[float], start: int) -> None:
        """Prefix sums for returns[start:], the lists already holding them up to start - 1."""
        s1, s2 = self.s1, self.s2
        a, b = (s1[-1], s2[-1]) if s1 else (0, 0)
        for i in range(start, len(returns)):
            if i > 0:
                x = returns[i] * _SCALE
                if x.is_integer():
                    q = int(x)
                    a += q
                    b += q * q
                else:  # not finite, or finer than 2**-110: only a from-scratch reference can say
                    self.exact = False
            s1.append(a)
            s2.append(b)

    def appended(self, times: Sequence[float], returns: Sequence[float]) -> None:
        """One observation was added after the last one."""
        if not self.built:
            return
        x = returns[-1] * _SCALE
        if len(returns) > 1 and x.is_integer():
            q = int(x)
            self.s1.append(self.s1[-1] + q)
            self.s2.append(self.s2[-1] + q * q)
        else:
            self._extend(returns, len(returns) - 1)
        if len(times) > 1:
            gaps = self.gaps
            if len(times) > _GAPS + 1:
                del gaps[bisect_left(gaps, times[-_GAPS - 1] - times[-_GAPS - 2])]
            insort(gaps, times[-1] - times[-2])
        e = self._ewma
        if e is not None:
            lam, window, leaving, total, count, err = e
            r = returns[-1]
            total = lam * total + r * r
            if count < window:
                e[4] = count + 1
                bound = total
            else:
                old = returns[-window - 1]
                out = leaving * (old * old)
                bound = total + out
                total -= out
            err = lam * err + 4.0 * _UNIT * bound
            e[3], e[5] = total, err
            if err > _EWMA_RTOL * total:
                self._ewma = None  # recomputed from its window when next read

    def inserted(self, times: Sequence[float], returns: Sequence[float], i: int) -> None:
        """One observation was inserted at index i, before the last one: recompute from i on."""
        if not self.built:
            return
        del self.s1[i:], self.s2[i:]
        self._extend(returns, i)
        self.gaps = _recent_gaps(times)
        self._ewma = None

    def trimmed(self, excess: int, times: Sequence[float]) -> None:
        """The `excess` oldest observations were dropped; windows that reached them are recomputed."""
        if not self.built:
            return
        del self.s1[:excess], self.s2[:excess]
        if len(times) <= _GAPS:
            self.gaps = _recent_gaps(times)
        e = self._ewma
        if e is not None and e[4] > len(times) - 1:
            self._ewma = None

    # --- reading -------------------------------------------------------------------------------------------

    def _sd(self, returns: Sequence[float], n: int, end: int = 0) -> float | None:
        """Sample sd of the n returns before the last `end` (as `sample_sd` of that slice would give)."""
        if n < 2:
            return None
        s1, s2 = self.s1, self.s2
        hi, lo = len(s1) - 1 - end, len(s1) - 1 - end - n
        a = s1[hi] - s1[lo]
        spread = n * (s2[hi] - s2[lo]) - a * a  # n^2 (n - 1) variance, exactly, scaled by 2**220
        if spread <= 0 or a * a * (n - 1) > _KAPPA_MAX * spread:
            if spread == 0 and a == 0:
                return 0.0  # all returns exactly 0: so is the reference
            return sample_sd(returns[lo + 1 : hi + 1])
        return math.sqrt(spread / ((n * (n - 1)) << (2 * _SHIFT)))

    def _ewma_variance(self, returns: Sequence[float], lam: float, window: int, count: int) -> float:
        e = self._ewma
        if e is None or e[0] != lam or e[1] != window or e[4] != count:
            total = 0.0
            for r in returns[len(returns) - count :]:
                total = lam * total + r * r
            e = self._ewma = [lam, window, lam**window, total, count, 2.0 * (count + 1) * _UNIT * total]
        first = returns[len(returns) - count]
        # sigma2 = lam^(m-1) r_s^2 + (1 - lam) sum_{j>s} lam^(k-j) r_j^2 = (1 - lam) S + lam^m r_s^2
        return (1.0 - lam) * e[3] + (e[2] if count == window else lam**count) * (first * first)

    def estimate(
        self, times: Sequence[float], prices: Sequence[float], returns: Sequence[float], params: PriceParams
    ) -> dict[str, float | None] | None:
        """`price_indicators` of the series, the ESTIMATED ones within ESTIMATE_RTOL; None if only it can say."""
        if not self.built:
            self.rebuild(times, returns)
            self.built = True
        vw, ew, sw, lw, jw = (
            params.volatility_window,
            params.ewma_window,
            params.short_window,
            params.long_window,
            params.jump_window,
        )
        if not self.exact or vw < 1 or ew < 1 or sw < 1 or lw < 1 or jw < 1:
            return None
        need = max(vw, ew, lw, jw + 1)
        n = len(returns) - 1
        if n > need:
            n = need  # the returns `price_indicators` is given
        # With windows shorter than the gaps kept, `infer_frequency` sees only the times the windows need.
        gaps = _recent_gaps(times[-need - 1 :]) if need < _GAPS else self.gaps
        ppy = PERIODS_PER_YEAR[frequency_of_gaps(gaps)]
        root = math.sqrt(ppy)
        sd = self._sd(returns, vw if vw < n else n)
        ewma = None
        if n >= 1:
            ewma = math.sqrt(self._ewma_variance(returns, params.ewma_lambda, ew, ew if ew < n else n)) * root
        ratio = None
        if n >= lw and sw >= 2:
            short, long = self._sd(returns, sw if sw < n else n), self._sd(returns, lw)
            if short is not None and long:
                ratio = short / long
        jump = None
        if n >= params.jump_min_returns + 1:
            m = jw if jw < n - 1 else n - 1
            jump_sd = self._sd(returns, m, 1)
            if jump_sd is not None:
                jump_sd = max(jump_sd, params.jump_sd_floor / root)
                if jump_sd:
                    s1 = self.s1
                    mean = (s1[-2] - s1[-2 - m]) / (1 << _SHIFT) / m  # fsum(earlier) / m, to the bit
                    jump = (returns[-1] - mean) / jump_sd
        day, week, month = price_changes(times, prices)
        return {
            "price": prices[-1] if prices else None,
            "price_change_1d_pct": day,
            "price_change_7d_pct": week,
            "price_change_30d_pct": month,
            "price_volatility": None if sd is None else sd * root,
            "price_volatility_ewma": ewma,
            "price_volatility_ratio": ratio,
            "price_jump_z": jump,
            "price_periods_per_year": float(ppy),
        }
