"""The engine: event time, lateness, duplicates, evidence, classification, reload, determinism."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from services.ingest.classify import classify_item
from services.scoring.config import DEFAULT_PATH, load_config, parse_config
from services.scoring.engine import MaterialState, Rejection, apply_event, apply_event_in_place
from shared.events import (
    BreachStatus,
    Classification,
    LeadTimeQuoted,
    Measure,
    NewsReported,
    PriceObserved,
    Severity,
    TradeFlowReported,
)

T0 = datetime(2023, 7, 3, tzinfo=UTC)
CONFIG = load_config()


def price(p: float, day: float, material: str = "gallium", **kw) -> PriceObserved:
    return PriceObserved(
        material=material,
        source="fastmarkets",
        observed_at=T0 + timedelta(days=day),
        price=p,
        currency="USD",
        unit="kg",
        series="Ga 99.99%",
        **kw,
    )


def feed(events, config=CONFIG, state=None, apply=apply_event):
    """Apply (event, id) pairs in order; returns the final state and every outcome."""
    outcomes = []
    for i, e in enumerate(events):
        event, event_id = e if isinstance(e, tuple) else (e, f"id-{i}")
        outcome = apply(state, event, event_id=event_id, config=config)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def test_two_gallium_prices_fire_the_demo_price_rule():
    _, outs = feed([price(300.0, 0), price(450.0, 1)])
    assert outs[0].breaches == []
    (b,) = [b for b in outs[1].breaches if b.rule == "price-change-1d"]
    assert (b.severity, b.status, b.threshold) == (Severity.CRITICAL, BreachStatus.FIRING, 40.0)
    assert b.value == pytest.approx(50.0)
    assert b.summary == "Gallium: 1-day price change +50% is above the critical threshold of +40% (since 2023-07-04)"
    assert b.starts_at == T0 + timedelta(days=1)
    assert b.observed_at == T0 + timedelta(days=1)
    assert [e.id for e in b.evidence] == ["id-1", "id-0"]
    assert outs[1].snapshot.indicators["price_change_1d_pct"] == pytest.approx(50.0)


def test_breach_resolves_when_price_change_falls_below_clear():
    _, outs = feed([price(300.0, 0), price(450.0, 1), price(460.0, 2)])
    (b,) = [b for b in outs[2].breaches if b.rule == "price-change-1d"]
    assert (b.status, b.threshold, b.ends_at) == (BreachStatus.RESOLVED, 10.0, T0 + timedelta(days=2))
    assert b.starts_at == T0 + timedelta(days=1)


def test_late_event_within_bound_lands_in_the_right_place_of_the_series():
    state, _ = feed([price(100.0, 0), price(100.0, 1), price(100.0, 2), price(120.0, 4)])
    # the 1-day change on day 4 is measured against day 2 (closest earlier price), +20%
    assert state.indicators["price"]["price_change_1d_pct"] == pytest.approx(20.0)
    out = apply_event(state, price(110.0, 3), event_id="late", config=CONFIG)
    assert out.rejected is None
    series = next(iter(out.state.series.values()))
    assert list(series.p) == [100.0, 100.0, 100.0, 110.0, 120.0]
    assert out.snapshot.indicators["price"] == 120.0
    assert out.snapshot.indicators["price_change_1d_pct"] == pytest.approx((120 / 110 - 1) * 100)


def test_event_older_than_watermark_minus_bound_is_rejected_with_reason():
    state, _ = feed([price(100.0, 0), price(101.0, 10)])
    out = apply_event(state, price(90.0, 2), event_id="too-late", config=CONFIG)
    assert out.rejected.kind == "late"
    assert str(out.rejected).startswith("late: price event time 2023-07-05")
    assert "lateness bound of 7 days" in out.rejected.detail
    assert out.state is state
    assert out.breaches == []


def test_duplicate_id_and_duplicate_dedup_key_are_ignored():
    state, _ = feed([(price(100.0, 0), "a"), (price(101.0, 1), "b")])
    again = apply_event(state, price(101.0, 1), event_id="b", config=CONFIG)
    assert again.rejected == Rejection("duplicate", "event id already applied")
    same_key = apply_event(state, price(101.0, 1), event_id="c", config=CONFIG)
    assert same_key.rejected.kind == "duplicate"
    assert same_key.state is state


def test_government_only_input_makes_the_breach_government_only():
    _, outs = feed([price(300.0, 0), price(450.0, 1, classification=Classification.GOVERNMENT)])
    (b,) = [b for b in outs[1].breaches if b.rule == "price-change-1d"]
    assert b.classification == Classification.GOVERNMENT
    assert {e.classification for e in b.evidence} == {Classification.PUBLIC, Classification.GOVERNMENT}
    assert outs[1].snapshot.classification == Classification.GOVERNMENT


def test_public_inputs_make_a_public_breach():
    _, outs = feed([price(300.0, 0), price(450.0, 1)])
    assert all(b.classification == Classification.PUBLIC for b in outs[1].breaches)


def ban(
    day: int,
    measure: Measure = Measure.EXPORT_BAN,
    item: str = "n1",
    title: str = "China bans gallium exports",
    classification: Classification = Classification.PUBLIC,
) -> NewsReported:
    return NewsReported(
        material="gallium",
        item_id=item,
        source="mofcom",
        url=f"https://example.org/{item}",
        title=title,
        published_at=T0 + timedelta(days=day),
        materials=["gallium"],
        countries=["CN"],
        measure=measure,
        relevant=True,
        score=0.9,
        classification=classification,
    )


def test_export_ban_fires_critical_and_easing_resolves_it():
    state, outs = feed([ban(0), ban(30, Measure.EASING, item="n2", title="China lifts gallium export ban")])
    (fired,) = [b for b in outs[0].breaches if b.rule == "export-control-in-force"]
    assert (fired.severity, fired.status, fired.value) == (Severity.CRITICAL, BreachStatus.FIRING, 1.0)
    assert fired.evidence[0].id == "id-0"
    assert fired.evidence[0].url == "https://example.org/n1"
    assert outs[0].snapshot.export_controls[0]["country"] == "CN"
    assert outs[0].snapshot.export_controls[0]["status"] == "in_force"
    (resolved,) = [b for b in outs[1].breaches if b.rule == "export-control-in-force"]
    assert resolved.status == BreachStatus.RESOLVED
    assert resolved.fingerprint == fired.fingerprint
    assert state.flat_indicators()["export_controls_active"] == 0.0


def test_news_not_classified_as_a_measure_is_rejected_as_irrelevant():
    item = NewsReported(
        material="gallium", item_id="x", source="s", title="Gallium conference", published_at=T0, relevant=False
    )
    out = apply_event(None, item, event_id="x", config=CONFIG)
    assert out.rejected.kind == "irrelevant"


def flow(
    partner: str,
    value: float,
    period: str = "2023-05",
    reporter: str = "EU27",
    kg: float | None = None,
    flow_kind: str = "import",
) -> TradeFlowReported:
    return TradeFlowReported(
        material="gallium",
        source="comext",
        reporter=reporter,
        partner=partner,
        hs_code="81129289",
        flow=flow_kind,
        period=period,
        value_eur=value,
        quantity_kg=kg,
    )


def test_trade_flows_give_shares_hhi_and_import_reliance():
    state, outs = feed(
        [
            flow("CN", 700.0, kg=70_000),
            flow("JP", 200.0, kg=20_000),
            flow("DE", 100.0, kg=10_000),
            flow("US", 0.0, kg=0.0, flow_kind="export"),
        ]
    )
    ind = outs[-1].snapshot.indicators
    # Concentration on extra-EU origins only: CN 70 and JP 20 of 90; DE's 10 is intra-EU, seen in non_eu_share.
    assert ind["concentration_hhi"] == pytest.approx((100 * 7 / 9) ** 2 + (100 * 2 / 9) ** 2)
    assert ind["top_origin_share"] == pytest.approx(7 / 9)
    assert ind["non_eu_share"] == pytest.approx(0.9)
    # gallium: EU production 0 t in the shipped config -> reliance (100 t - 0) / (0 + 100 t - 0) = 1
    assert ind["import_reliance"] == pytest.approx(1.0)
    # One origin (CN) at first: above 2,500, above the EU screen's 4,000 and above the CRMA's 65 %.
    assert [b.rule for b in outs[0].breaches] == [
        "import-concentration",
        "crma-single-country",
        "strategic-dependency-hhi",
    ]
    assert [b.parameter for b in outs[0].breaches] == ["concentration_of_supply"] * 3


def test_trade_from_another_reporter_is_rejected():
    out = apply_event(None, flow("CN", 1.0, reporter="NL"), event_id="x", config=CONFIG)
    assert out.rejected == Rejection("irrelevant", "trade flow reported by NL; scoring uses reporter EU27")


def quote(days: float, day: float, origin: str = "CN") -> LeadTimeQuoted:
    return LeadTimeQuoted(
        material="gallium",
        source="survey",
        quoted_at=T0 + timedelta(days=day),
        lead_time_days=days,
        origin_country=origin,
        supplier="s1",
    )


def test_leadtime_rule_fires_only_after_holding_seven_days_of_event_time():
    events = [quote(30, 0), quote(30, 1), quote(30, 2), quote(70, 3), quote(70, 6), quote(70, 10)]
    _, outs = feed(events)
    fired = [(i, b.severity) for i, o in enumerate(outs) for b in o.breaches if b.rule == "leadtime-ratio"]
    assert fired == [(5, Severity.CRITICAL)]
    (b,) = [b for b in outs[5].breaches if b.rule == "leadtime-ratio"]
    assert b.starts_at == T0 + timedelta(days=3)


def test_reload_keeps_state_and_a_removed_rule_resolves_with_a_reason():
    state, outs = feed([price(300.0, 0), price(450.0, 1)])
    assert state.rules["price-change-1d"].open_severity == "critical"
    raw = {
        "rules": [
            {"name": "price-change-1d", "indicator": "price_change_1d_pct", "warning": 25, "critical": 45, "clear": 5}
        ]
    }
    relaxed = parse_config(raw)
    # still above the new critical threshold: the open breach continues, nothing re-fires
    state, outs = feed([(price(452.0, 1.5), "r1")], config=relaxed, state=state)
    assert state.rules["price-change-1d"].open_severity == "critical"
    assert outs[0].breaches == []
    state, outs = feed([(price(453.0, 1.7), "r2")], config=parse_config({"rules": []}), state=state)
    (b,) = outs[0].breaches
    assert (b.rule, b.status) == ("price-change-1d", BreachStatus.RESOLVED)
    assert "no longer applies" in b.summary
    assert state.rules == {}


def test_state_round_trips_through_json():
    state, _ = feed([price(300.0, 0), price(450.0, 1), ban(1), quote(30, 1), flow("CN", 5.0)])
    restored = MaterialState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def mixed_inputs():
    out = []
    for d in range(60):
        out.append(price(300.0 * (1.02 ** (d % 7)) + d, d))
        if d % 10 == 0:
            out.append(quote(30 + d, d + 0.5))
    out.insert(40, ban(20))
    out.append(ban(50, Measure.EASING, item="n2", title="Export ban suspended"))
    return out


def test_replay_is_deterministic_and_survives_a_serialisation_round_trip():
    events = mixed_inputs()
    _, first = feed(events)
    _, second = feed(events)
    dump = [b.model_dump_json() for o in first for b in o.breaches]
    assert dump == [b.model_dump_json() for o in second for b in o.breaches]
    assert len(dump) > 3
    # the live service keeps state in a table as JSON between events: same breaches
    state, third = None, []
    for i, e in enumerate(events):
        if state is not None:
            state = MaterialState.from_dict(json.loads(json.dumps(state.to_dict())))
        o = apply_event(state, e, event_id=f"id-{i}", config=CONFIG)
        state = o.state
        third.append(o)
    assert dump == [b.model_dump_json() for o in third for b in o.breaches]


def test_event_about_another_material_is_rejected():
    state, _ = feed([price(1.0, 0)])
    out = apply_event(state, price(1.0, 1, material="germanium"), event_id="x", config=CONFIG)
    assert str(out.rejected).startswith("irrelevant: event is about germanium")


def test_announced_control_comes_into_force_with_event_time():
    item = NewsReported(
        material="gallium",
        item_id="n",
        source="s",
        title="China to require licences",
        published_at=T0,
        countries=["CN"],
        measure=Measure.EXPORT_LICENCE,
        relevant=True,
        effective_date=date(2023, 8, 1),
    )
    state, outs = feed([item, price(100.0, 10), price(100.0, 28)])
    assert all(b.rule != "export-control-in-force" for o in outs for b in o.breaches)
    out = apply_event(state, price(100.0, 29), event_id="p29", config=CONFIG)  # 2023-08-01
    (b,) = [b for b in out.breaches if b.rule == "export-control-in-force"]
    assert b.severity == Severity.WARNING


@pytest.mark.parametrize("apply", [apply_event, apply_event_in_place])
def test_kept_returns_equal_log_returns_after_late_inserts_and_dropped_prices(apply):
    config = parse_config({**tomllib.loads(DEFAULT_PATH.read_text()), "history": {"price_points": 6}})
    on_time = [(0, 100.0), (1, 104.0), (2, 99.0), (4, 101.0), (5, 108.0), (6, 107.0)]
    state, _ = feed([price(p, d) for d, p in on_time], config, apply=apply)
    state = apply(state, price(103.0, 3), event_id="late-middle", config=config).state
    state = apply(state, price(90.0, 0.5), event_id="late-before-all", config=config).state
    (series,) = state.series.values()
    kept = [104.0, 99.0, 103.0, 101.0, 108.0, 107.0]  # six newest by time; day 0 and day 0.5 fall out
    assert list(series.p) == kept
    assert series.returns(6) == pytest.approx(np.diff(np.log(kept)).tolist(), rel=1e-12)
    assert series.returns(3) == pytest.approx(np.diff(np.log(kept[-3:])).tolist(), rel=1e-12)


def test_state_dict_keeps_its_shape_and_reloads_with_the_same_indicators():
    state, _ = feed([price(100.0 + (d % 3), d) for d in range(20)])
    data = json.loads(json.dumps(state.to_dict()))
    assert set(next(iter(data["series"].values()))) == {"source", "series", "t", "p", "ids", "cls", "urls"}
    reloaded = MaterialState.from_dict(data)
    assert reloaded == state
    nxt = price(130.0, 20)
    a = apply_event(state, nxt, event_id="n", config=CONFIG)
    b = apply_event(reloaded, nxt, event_id="n", config=CONFIG)
    assert a.snapshot.indicators == b.snapshot.indicators


def test_flat_then_moving_series_does_not_fire_a_critical_jump_but_a_real_shock_does():
    # 24 months at one price, then +11% (the shape that gave silver +51 sd in 1961), then a +60% month.
    prices = [100.0] * 24 + [111.0, 111.0, 177.6]
    _, outs = feed([price(p, 30.4 * i) for i, p in enumerate(prices)])
    jumps = [
        (i, b.severity.value, b.status.value, round(b.value, 1))
        for i, o in enumerate(outs)
        for b in o.breaches
        if b.rule == "price-jump"
    ]
    z_move = math.log(1.11) / (0.10 / math.sqrt(12))  # sd floored at 10% annualised, monthly
    assert jumps[0] == (24, "warning", "firing", round(z_move, 1))
    earlier = np.diff(np.log(prices[:-1]))[-60:]
    z_shock = (math.log(1.6) - earlier.mean()) / max(earlier.std(ddof=1), 0.10 / math.sqrt(12))
    assert (26, "critical", "firing", round(z_shock, 1)) in jumps


def all_kinds_of_input():
    """Prices (one late, one duplicate), quotes, a trade flow and export-control news for gallium."""
    events = [price(300.0 + 7 * (d % 5), d) for d in range(30)]
    events += [price(450.0, 30), price(305.0, 28.5), price(451.0, 30)]
    events += [
        LeadTimeQuoted(
            material="gallium",
            source="survey",
            quoted_at=T0 + timedelta(days=d),
            lead_time_days=days,
            origin_country="CN",
        )
        for d, days in ((2, 40), (9, 45), (31, 95))
    ]
    events += [
        TradeFlowReported(
            material="gallium",
            source="comext",
            reporter="EU27",
            partner="CN",
            hs_code="81129289",
            period="2023-06",
            value_eur=1e6,
        )
    ]
    events += [
        NewsReported(
            material="gallium",
            item_id="n1",
            source="mofcom",
            title="China bans gallium exports",
            published_at=T0 + timedelta(days=29),
            countries=["CN"],
            measure=Measure.EXPORT_BAN,
            relevant=True,
        )
    ]
    return sorted(
        events,
        key=lambda e: (
            getattr(e, "observed_at", None) or getattr(e, "quoted_at", None) or getattr(e, "published_at", None) or T0
        ),
    )


def test_apply_event_leaves_the_given_state_as_it_was():
    state, _ = feed(all_kinds_of_input()[:-3])
    before = json.dumps(state.to_dict())
    for i, event in enumerate(all_kinds_of_input()[-3:]):
        out = apply_event(state, event, event_id=f"more-{i}", config=CONFIG)
        assert out.rejected is None or out.rejected.kind == "duplicate"
        assert json.dumps(state.to_dict()) == before


def test_in_place_driver_ends_with_the_same_state_and_breaches_as_apply_event():
    copied, outs = feed(all_kinds_of_input())
    owned, owned_outs = feed(all_kinds_of_input(), apply=apply_event_in_place)
    assert owned.to_dict() == copied.to_dict()
    assert [[b.model_dump() for b in o.breaches] for o in owned_outs] == [
        [b.model_dump() for b in o.breaches] for o in outs
    ]
    assert [o.rejected for o in owned_outs] == [o.rejected for o in outs]
    assert any(o.rejected for o in outs)
    assert any(o.breaches for o in outs)
    assert all(o.snapshot is None for o in owned_outs)


def test_a_public_licence_easing_leaves_a_government_only_ban_in_force():
    easing = ban(30, Measure.EASING, item="n2", title="China lifts the export licence requirement for gallium")
    easing = easing.model_copy(
        update={
            "evidence": ["signal=export_licence: export licence", "signal=easing: lifts the export licence requirement"]
        }
    )
    state, outs = feed([ban(0, classification=Classification.GOVERNMENT), easing])
    assert [b for b in outs[1].breaches if b.rule == "export-control-in-force"] == []
    assert state.flat_indicators()["export_controls_active"] == 1.0
    assert [c["status"] for c in outs[1].snapshot.export_controls] == ["in_force"]


def test_a_late_input_that_resolves_a_breach_is_dated_in_the_summary_by_its_own_time():
    quote = LeadTimeQuoted(
        material="gallium", source="broker", quoted_at=T0 + timedelta(days=4), lead_time_days=30, origin_country="CN"
    )
    # The quote moves the watermark to day 4; the price of day 2 arrives late (within the bound) and resolves.
    _, outs = feed([price(300.0, 0), price(450.0, 1), quote, price(455.0, 2)])
    (b,) = [b for b in outs[3].breaches if b.rule == "price-change-1d"]
    assert b.status == BreachStatus.RESOLVED
    assert "resolved on 2023-07-05 (breach since 2023-07-04)" in b.summary


DEMO_TITLE = "China bans exports of gallium, germanium and antimony to the United States"


def demo_ban(**fields) -> NewsReported:
    base = {
        "material": "gallium",
        "item_id": "demo",
        "source": "mofcom",
        "title": DEMO_TITLE,
        "published_at": T0,
        "materials": ["gallium", "germanium", "antimony"],
        "countries": ["CN", "US"],
        "measure": Measure.EXPORT_BAN,
        "relevant": True,
        "score": 1.0,
    }
    return NewsReported(**(base | fields))


def controls_of(state) -> list[tuple[str, str]]:
    return sorted((c["country"], c["measure"]) for c in state.to_dict()["controls"].values())


def test_the_demo_ban_opens_one_control_of_china_and_none_of_its_target():
    verdict = classify_item("", title=DEMO_TITLE)
    state, outs = feed([demo_ban(imposed_by=list(verdict.imposed_by))])
    assert outs[0].rejected is None
    assert controls_of(state) == [("CN", "export_ban")]


def test_news_without_imposed_by_treats_every_country_named_as_imposing_as_before():
    state, _ = feed([demo_ban()])
    assert controls_of(state) == [("CN", "export_ban"), ("US", "export_ban")]


def test_news_naming_only_targets_is_irrelevant_for_want_of_an_imposer():
    out = apply_event(None, demo_ban(countries=["RU"], imposed_by=[]), event_id="x", config=CONFIG)
    assert out.rejected == Rejection("irrelevant", "export-control news names no imposing country")
    out = apply_event(None, demo_ban(countries=[], imposed_by=[]), event_id="x", config=CONFIG)
    assert out.rejected == Rejection("irrelevant", "export-control news names no country")


def test_an_easing_ends_only_the_imposers_controls():
    lift = demo_ban(
        item_id="lift",
        measure=Measure.EASING,
        imposed_by=["CN"],
        title="China suspends ban on gallium exports to the US",
        published_at=T0 + timedelta(days=30),
    )
    state, outs = feed([demo_ban(), lift])
    assert outs[1].rejected is None
    statuses = {c["country"]: c["until"] for c in state.to_dict()["controls"].values()}
    assert statuses["CN"] is not None
    assert statuses["US"] is None


def test_an_event_that_is_not_a_scoring_input_is_rejected_as_irrelevant_and_leaves_the_state_alone():
    from shared.events import DeadLettered

    letter = DeadLettered.of(b"x", "reason", source="test", stage="ingest")
    out = apply_event(None, letter, event_id="dl-1", config=CONFIG)
    assert out.rejected == Rejection("irrelevant", "mews.deadletter.v1 is not a scoring input")
    assert (out.state.material, out.state.seen_ids, out.breaches) == ("", [], [])
    state = feed([price(100.0, 0)])[0]
    out = apply_event(state, letter, event_id="dl-2", config=CONFIG)
    assert out.rejected.kind == "irrelevant"
    assert out.state is state
