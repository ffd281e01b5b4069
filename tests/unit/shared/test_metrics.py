"""observe_counted against one Histogram.observe per amount."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from shared.metrics import observe_counted

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _samples(histogram: Histogram) -> dict[str, float]:
    return {
        f"{s.name}{s.labels.get('le', '')}": s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_observe_counted_counts_every_amount_in_the_bucket_observe_puts_it_in():
    rng = random.Random(9)
    # Bounds themselves, values between them, zero, beyond the last bound, and a NaN.
    amounts = [*BUCKETS, 0.0, 11.0, 1e9, math.nan, *(rng.uniform(0, 12) for _ in range(500))]
    one_by_one = Histogram("lag_one", "", buckets=BUCKETS, registry=CollectorRegistry())
    for amount in amounts:
        one_by_one.observe(amount)
    batched = Histogram("lag_one", "", buckets=BUCKETS, registry=CollectorRegistry())
    observe_counted(batched, [(a, 1) for a in amounts[:10]])
    observe_counted(batched, [(a, 1) for a in amounts[10:]])
    observe_counted(batched, [])
    expected, got = _samples(one_by_one), _samples(batched)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if name == "lag_one_sum":
            assert math.isnan(value)  # the NaN observed
            assert math.isnan(got[name])
        else:
            assert got[name] == value, name


def test_observe_counted_sums_the_amounts():
    batched = Histogram("lag_two", "", buckets=BUCKETS, registry=CollectorRegistry())
    observe_counted(batched, [(0.25, 1), (0.5, 1), (3.0, 1)])
    samples = _samples(batched)
    assert samples["lag_two_sum"] == pytest.approx(3.75)
    assert samples["lag_two_count"] == 3
    assert samples["lag_two_bucket0.25"] == 1
    assert samples["lag_two_bucket5.0"] == 3


def test_observe_counted_is_observe_of_each_amount_repeated():
    counted = [(0.0, 3), (0.3, 1), (2.5, 4), (11.0, 2), (0.05, 0)]
    repeated = Histogram("lag_three", "", buckets=BUCKETS, registry=CollectorRegistry())
    for amount, times in counted:
        for _ in range(times):
            repeated.observe(amount)
    grouped = Histogram("lag_three", "", buckets=BUCKETS, registry=CollectorRegistry())
    observe_counted(grouped, counted)
    assert _samples(grouped) == pytest.approx(_samples(repeated))
    assert _samples(grouped)["lag_three_count"] == 10
