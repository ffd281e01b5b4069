"""The scoring worker on the real broker: breaches, determinism, restarts, rebalances and bad input."""

from __future__ import annotations

import time

import httpx
import pytest

from services.scoring.agents import INPUTS
from shared import topics as declared
from shared.events import DeadLettered, IndicatorSnapshot, encode
from tests.eventually import eventually_blocking

from .conftest import MATERIALS, READ_KEY, collect, of_rule, price, produce, produce_raw, run

pytestmark = pytest.mark.integration

# Daily prices whose 1-day change walks the price-change-1d rule (warning 20%, critical 40%, clear 10%) through
# fire (+25%), escalate (+44%), de-escalate (+15%), hold (+12%: below warning, not yet clear) and resolve (+5%).
WALK = [100.0, 125.0, 180.0, 207.0, 231.84, 243.432]


def test_breach_fires_escalates_and_resolves_with_hysteresis_and_keeps_its_evidence(
    kafka_topics, kafka_bootstrap, start_worker
):
    start_worker(kafka_topics)
    ids = run(produce(kafka_bootstrap, kafka_topics, [price("gallium", d, p) for d, p in enumerate(WALK)]))

    def resolved(msgs):
        return any(b.status == "resolved" for b in of_rule(msgs, "price-change-1d"))

    breaches = of_rule(run(collect(kafka_bootstrap, kafka_topics, declared.BREACHES, resolved)), "price-change-1d")

    assert [(b.status.value, b.severity.value) for b in breaches] == [
        ("firing", "warning"),
        ("firing", "critical"),
        ("firing", "warning"),
        ("resolved", "warning"),
    ]
    # The day-4 price (+12%) is below the warning threshold but above clear: no transition until day 5.
    assert [b.observed_at.day - 3 for b in breaches] == [1, 2, 3, 5]
    assert len({b.fingerprint for b in breaches}) == 1
    fired = breaches[0]
    assert round(fired.value, 6) == 25.0
    assert fired.threshold == 20.0
    # The evidence of the firing transition is the two prices that made the change, by their event ids.
    assert {ids[0], ids[1]} <= {e.id for e in fired.evidence}
    assert set(ids[2:]).isdisjoint(e.id for e in fired.evidence)
    assert breaches[-1].ends_at is not None
    assert breaches[-1].ends_at.day == 8


def test_the_same_input_into_two_fresh_namespaces_yields_identical_breaches(kafka_bootstrap, start_worker):
    import asyncio

    from shared.kafka import ensure_topics

    namespaces = [f"det{time.time_ns() % 10**9}a", f"det{time.time_ns() % 10**9}b"]
    for ns in namespaces:
        asyncio.run(ensure_topics(kafka_bootstrap, ns))
    inputs = [price("germanium", d, p) for d, p in enumerate(WALK)]
    inputs += [price("antimony", d, p) for d, p in enumerate(reversed(WALK))]
    workers = [start_worker(ns, name=ns, ready=False) for ns in namespaces]
    for worker in workers:
        worker.wait_ready()
    results = []
    for ns in namespaces:
        run(produce(kafka_bootstrap, ns, inputs))

        def settled(msgs):
            return any(b.status == "resolved" for b in of_rule(msgs, "price-change-1d"))

        msgs = run(collect(kafka_bootstrap, ns, declared.BREACHES, settled))
        # Without envelope ids and times: the breach itself, as data, in per-fingerprint order.
        results.append(sorted((b.fingerprint, b.observed_at, b.model_dump_json()) for _, b in msgs))

    assert results[0] == results[1]
    assert len(results[0]) >= 4


def test_table_state_survives_a_worker_restart_through_its_changelog(kafka_topics, kafka_bootstrap, start_worker):
    first = start_worker(kafka_topics, name="first")
    run(produce(kafka_bootstrap, kafka_topics, [price("cobalt", 0, 100.0), price("cobalt", 1, 100.0)]))
    run(
        collect(
            kafka_bootstrap,
            kafka_topics,
            declared.INDICATORS,
            lambda msgs: sum(isinstance(e, IndicatorSnapshot) for _, e in msgs) >= 2,
        )
    )
    assert first.stop() == 0

    start_worker(kafka_topics, name="second")  # a fresh process with a fresh in-memory store
    run(produce(kafka_bootstrap, kafka_topics, [price("cobalt", 2, 130.0)]))
    snaps = [
        e
        for _, e in run(
            collect(
                kafka_bootstrap,
                kafka_topics,
                declared.INDICATORS,
                lambda msgs: any(e.indicators.get("price") == 130.0 for _, e in msgs),
            )
        )
    ]
    latest = snaps[-1]
    assert latest.indicators["price"] == 130.0
    # Only the recovered history holds the day-1 price that this 1-day change is measured against.
    assert latest.indicators["price_change_1d_pct"] == pytest.approx(30.0)


def _assigned(worker) -> float:
    return worker.metric("mews_scoring_partitions_assigned")


def test_two_workers_share_partitions_and_the_survivor_takes_all_when_one_leaves(
    kafka_topics, kafka_bootstrap, start_worker
):
    a = start_worker(kafka_topics, name="a")
    b = start_worker(kafka_topics, name="b")
    inputs = len(INPUTS) * declared.MATERIAL_PARTITIONS  # every input topic's partitions

    def settled() -> tuple[float, float] | None:
        shares = (_assigned(a), _assigned(b))
        return shares if all(shares) and sum(shares) == inputs else None

    eventually_blocking(settled, within=30, every=0.3, what="every input partition shared by both workers")

    run(produce(kafka_bootstrap, kafka_topics, [price(m, 0, 100.0) for m in MATERIALS]))
    run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, lambda msgs: len(msgs) >= len(MATERIALS)))
    assert a.stop() == 0

    eventually_blocking(lambda: _assigned(b) == inputs, within=30, every=0.3, what="the survivor given every partition")
    run(produce(kafka_bootstrap, kafka_topics, [price(m, 1, 110.0) for m in MATERIALS]))

    def both_days(msgs):
        return {(e.material, e.as_of.day) for _, e in msgs} >= {(m, d) for m in MATERIALS for d in (3, 4)}

    snaps = [e for _, e in run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, both_days))]
    days = {(s.material, s.as_of.day) for s in snaps}
    assert days >= {(m, d) for m in MATERIALS for d in (3, 4)}, "an input was not scored"
    # Every material's day-1 snapshot measured its change against day 0, whichever worker scored day 0.
    last = {s.material: s for s in snaps}
    assert {m: round(last[m].indicators["price_change_1d_pct"], 6) for m in MATERIALS} == dict.fromkeys(MATERIALS, 10.0)


def test_bad_input_is_dead_lettered_with_a_reason_and_scoring_goes_on(kafka_topics, kafka_bootstrap, start_worker):
    start_worker(kafka_topics)
    wrong_topic = encode(price("gallium", 0, 100.0), source="tests")
    run(produce_raw(kafka_bootstrap, kafka_topics, declared.PRICES, b"\x00\xffnot json", b"gallium"))
    run(produce_raw(kafka_bootstrap, kafka_topics, declared.NEWS, wrong_topic, b"gallium"))
    run(produce_raw(kafka_bootstrap, kafka_topics, declared.PRICES, wrong_topic, b"germanium"))
    run(produce(kafka_bootstrap, kafka_topics, [price("gallium", 1, 100.0)]))

    letters = [
        e for _, e in run(collect(kafka_bootstrap, kafka_topics, declared.DEADLETTER, lambda msgs: len(msgs) >= 3))
    ]
    by_topic = {
        (d.intended_topic.split(".", 1)[1], d.original()[:8]): d.reason for d in letters if isinstance(d, DeadLettered)
    }
    assert len(letters) == 3
    assert all(d.stage == "scoring" for d in letters)
    reasons = sorted(by_topic.values())
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("expected mews.news.reported.v1, got mews.price.observed.v1" in r for r in reasons)
    assert any("key 'germanium' is not the event's material 'gallium'" in r for r in reasons)
    assert {d.original() for d in letters} == {b"\x00\xffnot json", wrong_topic}

    snaps = run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, lambda msgs: len(msgs) >= 1))
    assert [e.material for _, e in snaps] == ["gallium"]


def test_read_api_of_a_running_worker_shows_its_breach_to_a_cleared_key_only(
    kafka_topics, kafka_bootstrap, start_worker
):
    worker = start_worker(kafka_topics)
    run(produce(kafka_bootstrap, kafka_topics, [price("lithium", 0, 100.0), price("lithium", 1, 150.0)]))

    def with_breach() -> dict | None:
        r = httpx.get(f"{worker.url}/v1/materials/lithium", headers={"Authorization": f"Bearer {READ_KEY}"})
        return r.json() if r.status_code == 200 and r.json()["open_breaches"] else None

    body = eventually_blocking(with_breach, within=30, every=0.2, what="lithium's breach in the read API")
    assert body["indicators"]["price"] == 150.0
    assert "price-change-1d" in {b["rule"] for b in body["open_breaches"]}
    assert httpx.get(f"{worker.url}/v1/materials/lithium").status_code == 401
    assert (
        httpx.get(f"{worker.url}/v1/materials/unobtainium", headers={"Authorization": f"Bearer {READ_KEY}"}).status_code
        == 404
    )
    assert worker.metric("mews_scoring_events_total", topic="mews.prices.v1", outcome="ok") == 2
    assert (
        worker.metric(
            "mews_scoring_breaches_total",
            material="lithium",
            rule="price-change-1d",
            severity="critical",
            status="firing",
        )
        == 1
    )
    assert worker.metric("mews_scoring_price", material="lithium") == 150.0
    assert worker.metric("mews_scoring_breaches_firing", material="lithium", severity="critical") == 1
    assert worker.metric("mews_scoring_processing_lag_seconds_count", topic="mews.prices.v1") == 2


def test_a_stock_report_below_its_cover_target_raises_a_government_only_breach(
    kafka_topics, kafka_bootstrap, start_worker
):
    from datetime import UTC, datetime

    from shared.events import Classification, StockReported, TradeFlowReported

    start_worker(kafka_topics)
    # 32.8725 t of net imports in 2024 is 0.09 t a day: 4.5 t held covers 50 days, under the 60-day target.
    run(
        produce(
            kafka_bootstrap,
            kafka_topics,
            [
                TradeFlowReported(
                    material="gallium",
                    source="comext",
                    reporter="EU27",
                    partner="CN",
                    hs_code="81129289",
                    period="2024",
                    quantity_kg=32_872.5,
                ),
                StockReported(
                    material="gallium",
                    source="ministry",
                    reported_at=datetime(2024, 3, 1, tzinfo=UTC),
                    tonnes=4.5,
                    holder="NL strategic reserve",
                ),
            ],
        )
    )

    breaches = of_rule(
        run(collect(kafka_bootstrap, kafka_topics, declared.BREACHES, lambda msgs: bool(of_rule(msgs, "stock-cover")))),
        "stock-cover",
    )

    (breach,) = breaches
    assert round(breach.value, 6) == 50.0
    assert (breach.parameter, breach.classification) == ("supply_and_demand", Classification.GOVERNMENT)


def test_the_alert_on_the_demo_ban_news_names_china_and_not_the_country_it_targets(
    kafka_topics, kafka_bootstrap, start_worker
):
    from datetime import UTC, datetime

    from shared.events import Measure, NewsReported

    start_worker(kafka_topics)
    run(
        produce(
            kafka_bootstrap,
            kafka_topics,
            [
                NewsReported(
                    material="gallium",
                    item_id="demo",
                    source="mofcom",
                    published_at=datetime(2024, 12, 3, tzinfo=UTC),
                    title="China bans exports of gallium, germanium and antimony to the United States",
                    materials=["gallium", "germanium", "antimony"],
                    countries=["CN", "US"],
                    imposed_by=["CN"],
                    measure=Measure.EXPORT_BAN,
                    relevant=True,
                    score=1.0,
                )
            ],
        )
    )

    (breach,) = of_rule(
        run(
            collect(
                kafka_bootstrap,
                kafka_topics,
                declared.BREACHES,
                lambda msgs: bool(of_rule(msgs, "export-control-in-force")),
            )
        ),
        "export-control-in-force",
    )
    assert [e.value for e in breach.evidence if e.kind == "news"] == ["CN export_ban"]


def test_the_worker_scores_supply_signal_news_into_a_snapshot_and_a_burst_breach(
    kafka_topics, kafka_bootstrap, start_worker
):
    from datetime import UTC, datetime, timedelta

    from shared.events import NewsReported, Topic

    worker = start_worker(kafka_topics)
    day0 = datetime(2025, 2, 3, tzinfo=UTC)
    items = [
        ("Cobalt lead times stretch to eighteen weeks", Topic.LEADTIME, {"leadtime_days": 126}),
        ("Cobalt prices jump 35% in a week", Topic.PRICE, {"price_change_pct": 35.0}),
        ("Glencore cuts cobalt output at Mutanda", Topic.PRODUCTION, {}),
    ]
    ids = run(
        produce(
            kafka_bootstrap,
            kafka_topics,
            [
                NewsReported(
                    material="cobalt",
                    item_id=f"news-{n}",
                    source="wire",
                    url=f"https://example.org/cobalt/{n}",
                    title=title,
                    published_at=day0 + timedelta(days=n),
                    materials=["cobalt"],
                    relevant=True,
                    score=0.8,
                    topic=topic,
                    **figures,
                )
                for n, (title, topic, figures) in enumerate(items)
            ],
        )
    )

    (breach,) = of_rule(
        run(
            collect(
                kafka_bootstrap, kafka_topics, declared.BREACHES, lambda msgs: bool(of_rule(msgs, "news-signal-burst"))
            )
        ),
        "news-signal-burst",
    )
    assert (breach.status.value, breach.severity.value, breach.value) == ("firing", "warning", 3.0)
    assert [(e.id, e.url, e.value) for e in breach.evidence] == [
        (ids[2], "https://example.org/cobalt/2", "production: Glencore cuts cobalt output at Mutanda"),
        (ids[1], "https://example.org/cobalt/1", "price, price +35%: Cobalt prices jump 35% in a week"),
        (
            ids[0],
            "https://example.org/cobalt/0",
            "leadtime, lead time 126 days: Cobalt lead times stretch to eighteen weeks",
        ),
    ]

    snapshots = [
        e
        for _, e in run(collect(kafka_bootstrap, kafka_topics, declared.INDICATORS, lambda msgs: len(msgs) >= 3))
        if isinstance(e, IndicatorSnapshot)
    ]
    last = max(snapshots, key=lambda s: s.as_of)
    assert (
        last.indicators["news_signals_30d"],
        last.indicators["news_signals_30d.price"],
        last.indicators["news_leadtime_days"],
        last.indicators["news_price_change_pct"],
    ) == (3.0, 1.0, 126.0, 35.0)
    # The read view folds the snapshots in on its own.
    eventually_blocking(
        lambda: worker.metric("mews_scoring_news_signals_30d", material="cobalt") == 3.0,
        within=30,
        every=0.2,
        what="the news signals in the worker's metrics",
    )
    assert worker.metric("mews_scoring_events_total", topic="mews.news.v1", outcome="ok") == 3
