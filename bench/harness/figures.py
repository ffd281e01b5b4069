"""The arithmetic the benchmarks print: percentiles, medians that skip missing runs, pair accounting."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the runs that produced a figure; None when none did."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass(frozen=True)
class PairCount:
    """How the expected (receiver, alert) pairs were delivered: each once is the only right answer."""

    expected: int
    delivered: int  # distinct expected pairs that arrived at least once
    duplicates: int  # arrivals beyond the first of a pair
    unexpected: int  # arrivals of pairs nobody expected

    @property
    def missing(self) -> int:
        return self.expected - self.delivered

    @property
    def exactly_once(self) -> bool:
        return self.delivered == self.expected and self.duplicates == 0 and self.unexpected == 0


def count_pairs(arrived: Iterable[tuple[str, str]], expected: set[tuple[str, str]]) -> PairCount:
    """Account every arrival of a pair against the set of pairs that should each arrive exactly once."""
    seen = Counter(arrived)
    delivered = sum(1 for pair in seen if pair in expected)
    duplicates = sum(n - 1 for pair, n in seen.items() if pair in expected)
    unexpected = sum(n for pair, n in seen.items() if pair not in expected)
    return PairCount(len(expected), delivered, duplicates, unexpected)


def fmt(value: float | None, spec: str = ".3f", unit: str = "") -> str:
    """A figure for printing, or 'n/a' when a run could not produce it."""
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def histogram_totals(text: str) -> dict[str, tuple[float, float]]:
    """Each Prometheus histogram series of a scrape as `name{labels}` -> (count, sum of observations)."""
    totals: dict[str, list[float]] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        for suffix, slot in (("_count", 0), ("_sum", 1)):
            if name.endswith(suffix):
                key = name[: -len(suffix)] + ("{" + labels if labels else "")
                totals.setdefault(key, [0.0, 0.0])[slot] = float(value)
    return {key: (count, total) for key, (count, total) in totals.items()}


def histogram_growth(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], prefix: str = ""
) -> dict[str, tuple[float, float]]:
    """What each histogram series (of names starting with `prefix`) gained between two scrapes."""
    grown = {}
    for key, (count, total) in after.items():
        was_count, was_total = before.get(key, (0.0, 0.0))
        if key.startswith(prefix) and count > was_count:
            grown[key] = (count - was_count, total - was_total)
    return grown
