"""The pure pieces of the benchmarks: their arithmetic, the Alertmanager anchor's routing, the price workload."""

from __future__ import annotations

import asyncio

import yaml

from bench.e2e_bench import (
    Price,
    back_to_zero,
    expected_transitions,
    offer,
    price_schedule,
    settled,
    transition_key,
)
from bench.harness.alertmanager import fanout_config
from bench.harness.figures import count_pairs, histogram_growth, histogram_totals, median_of, percentile


def test_percentile_interpolates_between_closest_ranks():
    values = [float(v) for v in range(10, 0, -1)]  # 10 .. 1, unsorted on purpose
    assert percentile(values, 50) == 5.5
    assert abs(percentile(values, 99) - 9.91) < 1e-12  # rank 8.91: 9 + 0.91 * (10 - 9)
    assert percentile([], 50) is None


def test_median_skips_runs_without_a_figure():
    assert median_of([3.0, None, 1.0, 2.0]) == 2.0
    assert median_of([None, None]) is None


def test_pair_count_tells_duplicates_missing_and_strangers_apart():
    expected = {("a", "1"), ("a", "2"), ("b", "1")}
    count = count_pairs([("a", "1"), ("a", "1"), ("b", "1"), ("c", "9")], expected)
    assert (count.delivered, count.missing, count.duplicates, count.unexpected) == (2, 1, 1, 1)
    assert not count.exactly_once
    assert count_pairs([("a", "1"), ("a", "2"), ("b", "1")], expected).exactly_once


def test_alertmanager_config_sends_every_alert_to_every_receiver_at_once():
    config = yaml.safe_load(fanout_config([("org-0", "http://127.0.0.1:1/0"), ("org-1", "http://127.0.0.1:1/1")]))
    route = config["route"]
    assert route["group_wait"] == "0s"
    assert route["group_by"] == ["..."]
    assert route["routes"] == [{"receiver": "org-0", "continue": True}, {"receiver": "org-1", "continue": True}]
    hooks = {r["name"]: r.get("webhook_configs") for r in config["receivers"]}
    assert hooks["org-1"] == [{"url": "http://127.0.0.1:1/1", "send_resolved": False}]
    assert hooks["unrouted"] is None


def test_price_schedule_visits_every_material_each_day_and_spikes_every_tenth_day():
    prices = price_schedule(["gallium", "germanium"], 40)
    assert [(p.material, p.day) for p in prices[:4]] == [
        ("gallium", 0),
        ("germanium", 0),
        ("gallium", 1),
        ("germanium", 1),
    ]
    spikes = sorted({p.day for p in prices if p.price != 100.0})
    assert spikes == [9, 19]
    assert all(p.price == 125.0 for p in prices if p.day in spikes)


def test_the_spike_fires_the_one_day_rule_and_the_day_after_resolves_it():
    prices = price_schedule(["gallium"], 12)
    transitions = expected_transitions(prices)
    spike, after = prices[9].observed_at, prices[10].observed_at
    assert transition_key("gallium", "price-change-1d", "firing", spike) in transitions
    assert transition_key("gallium", "price-change-1d", "resolved", after) in transitions


def test_offer_sends_every_price_once_and_each_material_in_order():
    prices = price_schedule([f"m{i}" for i in range(6)], 120)
    batches: list[list[Price]] = []

    async def send(batch: list[Price]) -> None:
        await asyncio.sleep(0)
        batches.append(batch)

    sent_at = asyncio.run(offer(send, prices, rate=20_000, lanes=3))
    flat = [p for b in batches for p in b]
    assert sorted(flat, key=lambda p: (p.material, p.day)) == sorted(prices, key=lambda p: (p.material, p.day))
    for material in {p.material for p in prices}:
        days = [p.day for p in flat if p.material == material]
        assert days == sorted(days)
    assert set(sent_at) == {(p.material, p.day) for p in prices}


def test_lag_is_back_to_zero_only_once_it_stays_there():
    samples = [(0.0, 5.0), (1.0, 0.0), (2.0, 3.0), (3.0, 0.0), (4.0, 0.0)]
    assert back_to_zero(samples, after=0.5) == 2.5
    assert back_to_zero(samples[:3], after=0.5) is None
    assert back_to_zero(samples, after=3.5) == 0.5


def test_a_run_whose_lag_never_settled_is_named_not_hidden_in_the_median():
    assert settled([1.0, 3.0, 2.0]) == "2.0 s"
    assert settled([1.0, None, 2.0]) == "not within the drain in 1 of 3"


def test_an_earlier_revision_gets_notifys_variables_under_their_old_names_too():
    from bench.harness.trees import with_previous_names

    env = {
        "MEWS_NOTIFY_GROUP_WAIT_SECONDS": "0",
        "MEWS_NOTIFY_PORT": "8003",
        "MEWS_SCORING_PORT": "8002",
        "MEWS_LOG_LEVEL": "WARNING",
    }
    assert with_previous_names(env) == {**env, "MEWS_GROUP_WAIT_SECONDS": "0"}  # the port was always NOTIFY_
    assert with_previous_names({"MEWS_GROUP_WAIT_SECONDS": "2", "MEWS_NOTIFY_GROUP_WAIT_SECONDS": "0"}) == {
        "MEWS_GROUP_WAIT_SECONDS": "0",
        "MEWS_NOTIFY_GROUP_WAIT_SECONDS": "0",
    }  # the new name's value wins


def test_histogram_growth_is_count_and_sum_gained_per_series_between_scrapes():
    before = histogram_totals(
        '# HELP x_seconds t\nx_seconds_bucket{le="1.0",op="claim"} 2.0\n'
        'x_seconds_count{op="claim"} 2.0\nx_seconds_sum{op="claim"} 0.5\n'
    )
    after = histogram_totals(
        'x_seconds_count{op="claim"} 5.0\nx_seconds_sum{op="claim"} 1.25\n'
        'x_seconds_count{op="record"} 1.0\nx_seconds_sum{op="record"} 0.125\n'
        "y_seconds_count 3.0\ny_seconds_sum 3.0\nx_total 9.0\n"
    )
    assert before == {'x_seconds{op="claim"}': (2.0, 0.5)}
    assert histogram_growth(before, after, "x_") == {
        'x_seconds{op="claim"}': (3.0, 0.75),
        'x_seconds{op="record"}': (1.0, 0.125),
    }
    assert histogram_growth(after, after) == {}
