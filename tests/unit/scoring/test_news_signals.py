"""Supply-signal news other than export controls: state, indicators, the burst rule and its evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.config import load_config, parameter_of
from services.scoring.engine import MaterialState, Rejection, apply_event, apply_event_in_place
from shared.events import BreachStatus, Classification, Measure, NewsReported, PriceObserved, Severity, Topic

T0 = datetime(2024, 5, 1, tzinfo=UTC)
CONFIG = load_config()
NEWS = ("news_signals_30d", "news_leadtime_days", "news_price_change_pct")


def signal(day: float, item: str, topic: str = "leadtime", material: str = "gallium", **fields) -> NewsReported:
    fields.setdefault("title", f"Gallium {topic} news {item}")
    return NewsReported(
        material=material,
        item_id=item,
        source="reuters",
        url=f"https://example.org/{item}",
        published_at=T0 + timedelta(days=day),
        materials=[material],
        relevant=True,
        score=0.8,
        topic=Topic(topic),
        **fields,
    )


def price(day: float, material: str = "gallium") -> PriceObserved:
    return PriceObserved(
        material=material,
        source="fastmarkets",
        observed_at=T0 + timedelta(days=day),
        price=300.0,
        currency="USD",
        unit="kg",
        series="Ga",
    )


def feed(events, config=CONFIG, state=None, first_id=0):
    outcomes = []
    for i, event in enumerate(events, start=first_id):
        outcome = apply_event(state, event, event_id=f"id-{i}", config=config)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def burst(outcomes) -> list:
    return [b for o in outcomes for b in o.breaches if b.rule == "news-signal-burst"]


# --- state -------------------------------------------------------------------------------------------------


def test_supply_signal_news_is_kept_and_a_repeat_of_the_same_item_is_a_duplicate():
    state, outs = feed([signal(0, "a"), signal(1, "a", title="Re-posted"), signal(1, "b", topic="price")])
    assert [o.rejected for o in outs[::2]] == [None, None]
    assert outs[1].rejected == Rejection("duplicate", "this news item was already applied (same dedup key)")
    assert [(n.key, n.topic) for n in state.news_signals] == [("a|gallium", "leadtime"), ("b|gallium", "price")]


def test_a_late_item_within_the_lateness_bound_lands_in_time_order_and_one_beyond_it_is_rejected():
    state, outs = feed([signal(40, "new"), signal(20, "late"), signal(9, "too-late")])
    assert outs[1].rejected is None
    assert [n.key for n in state.news_signals] == ["late|gallium", "new|gallium"]
    assert str(outs[2].rejected).startswith("late: news event time 2024-05-10")


def test_the_kept_signals_are_bounded_by_the_history_setting_oldest_forgotten_first():
    small = replace(CONFIG, history=replace(CONFIG.history, news_signals=3))
    state, _ = feed([signal(d, f"n{d}") for d in range(5)], config=small)
    assert [n.key for n in state.news_signals] == ["n2|gallium", "n3|gallium", "n4|gallium"]


def test_the_state_with_signals_survives_its_serialised_form_and_a_state_without_keeps_its_old_form():
    state, _ = feed([signal(0, "a", leadtime_days=126), signal(2, "b", topic="price", price_change_pct=-12.5)])
    assert MaterialState.from_dict(state.to_dict()) == state
    plain, _ = feed([price(0)])
    assert "news_signals" not in plain.to_dict()


def test_export_control_news_is_handled_as_before_and_not_counted_as_a_signal():
    ban = NewsReported(
        material="gallium",
        item_id="ban",
        source="mofcom",
        title="China bans gallium exports",
        published_at=T0,
        countries=["CN"],
        measure=Measure.EXPORT_BAN,
        relevant=True,
        topic=Topic.EXPORT_CONTROL,
        days_until_in_force=0,
    )
    state, outs = feed([ban])
    assert list(state.controls) == ["CN|export_ban"]
    assert state.news_signals == ()
    assert "news_signals_30d" not in outs[0].snapshot.indicators
    assert [b.rule for b in outs[0].breaches] == ["export-control-in-force"]


@pytest.mark.parametrize("topic", [None, Topic.NONE])
def test_news_without_a_supply_signal_is_rejected_as_irrelevant_as_before(topic):
    item = NewsReported(
        material="gallium",
        item_id="x",
        source="s",
        title="Gallium conference",
        published_at=T0,
        relevant=True,
        topic=topic,
    )
    out = apply_event(None, item, event_id="x", config=CONFIG)
    assert out.rejected == Rejection("irrelevant", "news item is not classified as an export-control measure")


def test_a_signal_the_classifier_judged_irrelevant_is_not_kept():
    out = apply_event(None, signal(0, "a").model_copy(update={"relevant": False}), event_id="x", config=CONFIG)
    assert out.rejected.kind == "irrelevant"


# --- indicators --------------------------------------------------------------------------------------------


def test_the_counts_cover_the_30_days_up_to_the_watermark_in_all_and_by_topic():
    # Items on days 0, 5, 12 and 20; the watermark on day 32: the window (day 2, day 32] holds days 5, 12 and 20.
    events = [
        signal(0, "a", "price"),
        signal(5, "b", "price"),
        signal(12, "c", "tariff"),
        signal(20, "d", "production"),
        price(32),
    ]
    state, outs = feed(events)
    ind = outs[-1].snapshot.indicators
    assert ind["news_signals_30d"] == 3.0
    assert (
        ind["news_signals_30d.price"],
        ind["news_signals_30d.tariff"],
        ind["news_signals_30d.production"],
        ind["news_signals_30d.leadtime"],
        ind["news_signals_30d.stockpile"],
        ind["news_signals_30d.trade_volume"],
    ) == (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    assert outs[3].snapshot.indicators["news_signals_30d"] == 4.0  # on day 20 all four were in the window
    assert state.flat_indicators()["news_signals_30d"] == 3.0


def test_an_item_exactly_30_days_old_has_left_the_window():
    _, outs = feed([signal(0, "a"), price(30)])
    assert outs[-1].snapshot.indicators["news_signals_30d"] == 0.0


def test_the_lead_time_and_price_move_are_the_latest_stated_in_the_window():
    events = [
        signal(0, "a", leadtime_days=84),
        signal(3, "b", "price", price_change_pct=35.0),
        signal(6, "c", leadtime_days=126),
        signal(8, "d", "production"),
    ]
    _, outs = feed(events)
    ind = outs[-1].snapshot.indicators
    assert (ind["news_leadtime_days"], ind["news_price_change_pct"]) == (126.0, 35.0)
    _, later = feed([price(40)], state=outs[-1].state, first_id=len(events))
    assert (
        later[0].snapshot.indicators["news_leadtime_days"],
        later[0].snapshot.indicators["news_price_change_pct"],
    ) == (None, None)


def test_a_material_without_signals_has_no_news_indicators():
    _, outs = feed([price(0)])
    assert not any(k.startswith(NEWS) for k in outs[0].snapshot.indicators)


def test_news_indicators_name_the_crma_parameter_of_their_topic():
    assert [
        parameter_of(f"news_signals_30d.{t}")
        for t in ("price", "leadtime", "production", "tariff", "trade_volume", "stockpile")
    ] == [
        "price_volatility",
        "bottlenecks",
        "production_capacity",
        "trade_barriers",
        "trade_flows",
        "supply_and_demand",
    ]
    assert parameter_of("news_signals_30d") == "supply_and_demand"
    assert parameter_of("news_leadtime_days") == "bottlenecks"


# --- the rule and its evidence ------------------------------------------------------------------------------


def test_three_items_in_30_days_warn_six_are_critical_and_the_breach_resolves_as_they_age():
    events = [
        signal(d, f"n{d}", topic)
        for d, topic in enumerate(("leadtime", "price", "production", "tariff", "stockpile", "trade_volume"))
    ]
    # The window on day 31 holds the items of days 2..5 (still at warning or above: critical holds), on day 33
    # those of days 4 and 5 (below warning, not below clear 2: back to warning), on day 36 none (resolved).
    events += [price(31), price(33), price(36)]
    _, outs = feed(events)
    breaches = burst(outs)
    assert [(b.status, b.severity, b.value) for b in breaches] == [
        (BreachStatus.FIRING, Severity.WARNING, 3.0),
        (BreachStatus.FIRING, Severity.CRITICAL, 6.0),
        (BreachStatus.FIRING, Severity.WARNING, 2.0),
        (BreachStatus.RESOLVED, Severity.WARNING, 0.0),
    ]
    assert [i for i, o in enumerate(outs) if burst([o])] == [2, 5, 7, 8]
    assert outs[6].snapshot.indicators["news_signals_30d"] == 4.0
    fired = breaches[0]
    assert fired.parameter == "supply_and_demand"
    assert fired.summary == (
        "Gallium: supply-signal news items in 30 days 3 is above the warning threshold of 3 (since 2024-05-03)"
    )


def test_the_breach_evidence_names_each_item_with_its_topic_figure_title_url_and_source():
    events = [
        signal(0, "a", leadtime_days=126),
        signal(1, "b", "price", price_change_pct=35.0),
        signal(2, "c", "production"),
    ]
    _, outs = feed(events)
    (fired,) = burst(outs)
    assert [(e.id, e.kind, e.source, e.url, e.value) for e in fired.evidence] == [
        ("id-2", "news", "reuters", "https://example.org/c", "production: Gallium production news c"),
        ("id-1", "news", "reuters", "https://example.org/b", "price, price +35%: Gallium price news b"),
        ("id-0", "news", "reuters", "https://example.org/a", "leadtime, lead time 126 days: Gallium leadtime news a"),
    ]
    assert fired.evidence[0].time == T0 + timedelta(days=2)


def test_restricted_signals_make_a_restricted_breach_and_snapshot():
    events = [signal(0, "a"), signal(1, "b", classification=Classification.RESTRICTED), signal(2, "c")]
    _, outs = feed(events)
    (fired,) = burst(outs)
    assert fired.classification == Classification.RESTRICTED
    assert outs[-1].snapshot.classification == Classification.RESTRICTED


def test_lithium_needs_more_items_for_a_burst_than_the_default():
    events = [signal(d, f"n{d}", material="lithium") for d in range(5)]
    _, outs = feed(events)
    assert [outs.index(o) for o in outs if burst([o])] == [4]


def test_the_backtest_driver_gives_the_live_driver_s_breaches():
    events = [signal(d, f"n{d}") for d in range(4)] + [price(35)]
    _, live = feed(events)
    state, in_place = None, []
    for i, event in enumerate(events):
        outcome = apply_event_in_place(state, event, event_id=f"id-{i}", config=CONFIG)
        state = outcome.state
        in_place.append(outcome)
    assert [b.model_dump() for b in burst(in_place)] == [b.model_dump() for b in burst(live)]
    assert len(burst(live)) == 2


def test_the_counts_follow_a_long_random_mix_of_news_and_prices_as_counted_from_scratch():
    import random

    rng = random.Random(16)
    topics = ("price", "leadtime", "production", "stockpile", "tariff", "trade_volume")
    day, events, published = 0.0, [], []
    for n in range(600):
        day += rng.expovariate(1.5)
        if rng.random() < 0.25:
            late = max(0.0, day - rng.uniform(0, 20)) if rng.random() < 0.2 else day
            topic = rng.choice(topics)
            lead = rng.choice((None, 42, 126)) if topic == "leadtime" else None
            events.append(signal(late, f"n{n}", topic, leadtime_days=lead))
        else:
            events.append(price(day))
    state = None
    for i, event in enumerate(events):
        outcome = apply_event_in_place(state, event, event_id=f"id-{i}", config=CONFIG)
        state = outcome.state
        if isinstance(event, NewsReported) and outcome.rejected is None:
            published.append((event.published_at.timestamp(), event.topic.value, event.leadtime_days))
        if not published:
            continue
        at = state.watermark
        window = sorted(p for p in published if at - 30 * 86400 < p[0] <= at)
        ind = state.flat_indicators()
        assert ind["news_signals_30d"] == len(window), i
        assert ind["news_signals_30d.leadtime"] == sum(1 for p in window if p[1] == "leadtime"), i
        stated = [p[2] for p in window if p[2] is not None]
        assert ind["news_leadtime_days"] == (stated[-1] if stated else None), i
    assert len(published) > 100
