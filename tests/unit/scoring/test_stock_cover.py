"""Stock cover (CRMA Art. 23): tonnes held against average daily net imports, or configured consumption."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

import pytest

from services.scoring.config import DEFAULT_PATH, load_config, parse_config
from services.scoring.engine import MaterialState, Rejection, apply_event
from shared.events import BreachStatus, Classification, Severity, StockReported, TradeFlowReported

CONFIG = load_config()


def stock(tonnes: float, day: int = 1, holder: str = "NL strategic reserve", **kw) -> StockReported:
    return StockReported(
        material="gallium",
        source="ministry",
        reported_at=datetime(2024, 3, day, tzinfo=UTC),
        tonnes=tonnes,
        holder=holder,
        **kw,
    )


def flow(partner: str, kg: float | None, value: float = 1000.0, kind: str = "import") -> TradeFlowReported:
    return TradeFlowReported(
        material="gallium",
        source="comext",
        reporter="EU27",
        partner=partner,
        hs_code="81129289",
        flow=kind,
        period="2024",
        quantity_kg=kg,
        value_eur=value,
    )


def feed(events, config=CONFIG):
    state, outs = None, []
    for i, e in enumerate(events):
        out = apply_event(state, e, event_id=f"id-{i}", config=config)
        assert out.rejected is None, out.rejected
        state = out.state
        outs.append(out)
    return state, outs


def test_cover_is_tonnes_over_daily_net_imports_from_trade_quantities():
    # 36,525 kg imported less 3,652.5 kg exported in 2024 = 32.8725 t, 0.09 t a day; 4.5 t cover 50 days.
    state, outs = feed([flow("CN", 30_000.0), flow("CA", 6_525.0), flow("US", 3_652.5, kind="export"), stock(4.5)])
    ind = outs[-1].snapshot.indicators
    assert ind["stock_tonnes"] == 4.5
    assert ind["stock_daily_use_t"] == pytest.approx(32.8725 / 365.25)
    assert ind["stock_cover_days"] == pytest.approx(50.0)
    (b,) = [b for b in outs[-1].breaches if b.rule == "stock-cover"]
    assert (b.severity, b.status, b.threshold, b.parameter) == (
        Severity.WARNING,
        BreachStatus.FIRING,
        60.0,
        "supply_and_demand",
    )
    # Stock levels are government-only by default, and so is the breach they drive.
    assert b.classification == Classification.GOVERNMENT
    assert [e.kind for e in b.evidence] == ["stock"]
    assert outs[-1].snapshot.classification == Classification.GOVERNMENT


def test_without_quantities_the_configured_consumption_is_used():
    data = tomllib.loads(DEFAULT_PATH.read_text())
    data["materials"]["gallium"]["consumption_t_per_year"] = 36.525  # 0.1 t a day
    config = parse_config(data)
    _, outs = feed([flow("CN", None), stock(2.0)], config)
    ind = outs[-1].snapshot.indicators
    assert ind["stock_cover_days"] == pytest.approx(20.0)
    (b,) = [b for b in outs[-1].breaches if b.rule == "stock-cover"]
    assert b.severity == Severity.CRITICAL


def test_without_quantities_or_consumption_no_cover_is_claimed():
    _, outs = feed([flow("CN", None), stock(2.0)])
    ind = outs[-1].snapshot.indicators
    assert ind["stock_tonnes"] == 2.0
    assert ind["stock_cover_days"] is None
    assert not [b for b in outs[-1].breaches if b.rule == "stock-cover"]


def test_holders_add_up_and_a_newer_report_replaces_a_holders_older_one():
    state, outs = feed(
        [flow("CN", 36_525.0), stock(3.0, day=1), stock(2.0, day=1, holder="DE reserve"), stock(9.0, day=2)]
    )
    ind = outs[-1].snapshot.indicators
    assert ind["stock_tonnes"] == 11.0
    assert ind["stock_cover_days"] == pytest.approx(110.0)
    (resolved,) = [b for b in outs[-1].breaches if b.rule == "stock-cover"]
    assert resolved.status == BreachStatus.RESOLVED  # 110 days is past the clear threshold of 75
    older = apply_event(state, stock(1.0, day=1), event_id="late", config=CONFIG)
    assert older.rejected == Rejection(
        "irrelevant", "a newer stock report of holder 'NL strategic reserve' is already held"
    )


def test_new_trade_recomputes_the_cover_of_stocks_already_held():
    _, outs = feed([flow("CN", 36_525.0), stock(20.0), flow("CA", 36_525.0)])
    assert outs[1].snapshot.indicators["stock_cover_days"] == pytest.approx(200.0)
    assert outs[2].snapshot.indicators["stock_cover_days"] == pytest.approx(100.0)


def test_stocks_survive_a_round_trip_and_states_without_them_keep_their_form():
    state, _ = feed([flow("CN", 36_525.0), stock(4.0)])
    again = MaterialState.from_dict(state.to_dict())
    assert again.stocks == state.stocks
    assert again.flat_indicators()["stock_cover_days"] == pytest.approx(40.0)
    plain, _ = feed([flow("CN", 36_525.0)])
    assert "stocks" not in plain.to_dict()


def test_shipped_stock_rule_cites_the_jogmec_target():
    (rule,) = [r for r in CONFIG.rules if r.name == "stock-cover"]
    assert (rule.direction, rule.warning, rule.parameter) == ("below", 60.0, "supply_and_demand")
    assert "JOGMEC" in rule.source
