"""Loading and validating the scoring configuration."""

from __future__ import annotations

import dataclasses
import re

import pytest
from pydantic import ValidationError

from services.scoring.config import (
    PARAMETERS,
    ConfigError,
    History,
    Normalisation,
    PriceParams,
    load_config,
    parse_config,
)
from shared.durations import parse_duration

RULE = {
    "name": "price-change-1d",
    "indicator": "price_change_1d_pct",
    "direction": "above",
    "warning": 20,
    "critical": 40,
    "clear": 10,
    "for": "0s",
}


def test_shipped_config_has_the_demo_gallium_price_rule():
    cfg = load_config()
    rule = {r.name: r for r in cfg.rules_for("gallium")}["price-change-1d"]
    assert (rule.indicator, rule.direction, rule.warning, rule.critical, rule.clear, rule.for_seconds) == (
        "price_change_1d_pct",
        "above",
        20.0,
        40.0,
        10.0,
        0.0,
    )


def test_material_override_changes_only_named_fields():
    cfg = parse_config({"rules": [RULE], "materials": {"nickel": {"rules": {"price-change-1d": {"critical": 60}}}}})
    nickel = cfg.rules_for("nickel")[0]
    assert (nickel.warning, nickel.critical, nickel.clear) == (20.0, 60.0, 10.0)
    assert cfg.rules_for("copper")[0].critical == 40.0


def test_material_can_disable_a_rule_and_add_its_own():
    cfg = parse_config(
        {
            "rules": [RULE],
            "materials": {
                "gallium": {
                    "rules": {
                        "price-change-1d": {"disabled": True},
                        "gallium-leadtime": {"indicator": "leadtime_days", "warning": 60, "clear": 45},
                    }
                }
            },
        }
    )
    assert [r.name for r in cfg.rules_for("gallium")] == ["gallium-leadtime"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"indicator": "price_change_2d_pct"}, "unknown indicator"),
        ({"direction": "sideways"}, "direction must be"),
        ({"clear": 30}, "clear 30 must not be above"),
        ({"critical": 10}, "critical 10 must be above warning 20"),
        ({"for": "soon"}, "not a duration"),
        ({"warning": None, "critical": None}, "needs a warning or a critical"),
        ({"threshold": 3}, "unknown key"),
        ({"parameter": "vibes"}, "not a CRMA Art. 20\\(1\\) monitoring parameter"),
    ],
)
def test_invalid_rule_is_refused_with_an_error_naming_the_rule(change, message):
    spec = {k: v for k, v in {**RULE, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message) as info:
        parse_config({"rules": [spec]})
    assert "'price-change-1d'" in str(info.value)


def test_override_error_names_the_material_and_rule():
    with pytest.raises(ConfigError, match=r"rule 'price-change-1d' \(materials.tin.rules\)"):
        parse_config({"rules": [RULE], "materials": {"tin": {"rules": {"price-change-1d": {"clear": 50}}}}})


def test_duplicate_rule_names_and_bad_weights_are_refused():
    with pytest.raises(ConfigError, match="defined twice"):
        parse_config({"rules": [RULE, RULE]})
    with pytest.raises(ConfigError, match="unknown component"):
        parse_config({"weights": {"vibes": 1.0}})


def test_durations():
    assert parse_duration("0s") == 0
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("2w") == 14 * 86400
    assert parse_duration("90m") == 5400


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ({"jump_sd_flor": 0.1}, r"price: unknown key\(s\) jump_sd_flor"),
        ({"jump_min_returns": 70}, "must not exceed price.jump_window"),
        ({"jump_sd_floor": -0.1}, "cannot be negative"),
    ],
)
def test_invalid_price_parameters_are_refused_with_an_error_naming_them(price, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"price": price})


def test_an_empty_file_scores_with_the_sections_own_defaults():
    cfg = parse_config({})
    assert (cfg.price, cfg.normalisation, cfg.history) == (PriceParams(), Normalisation(), History())
    assert (cfg.price.volatility_window, cfg.normalisation.min_coverage, cfg.history.news_signals) == (30, 0.5, 100)
    assert (cfg.leadtime_baseline_days, cfg.leadtime_trend_days, cfg.reporter, cfg.trade_window_months) == (
        365.0,
        90.0,
        "EU27",
        12,
    )


def test_a_section_built_in_code_is_checked_as_in_the_file():
    # One definition: the file's constraints hold for a test's or a backtest's own parameters too.
    with pytest.raises(ValidationError, match="short_window must be shorter"):
        PriceParams(short_window=60, long_window=60)
    with pytest.raises(ValidationError, match="evidence"):
        dataclasses.replace(History(), evidence=0)
    with pytest.raises(ValidationError, match="window"):
        PriceParams(volatility_window="30")  # type: ignore[arg-type]


def test_shipped_config_floors_the_jump_z_score():
    price = load_config().price
    assert (price.jump_min_returns, price.jump_sd_floor) == (20, 0.10)


@pytest.mark.parametrize(
    ("data", "entry"),
    [
        ({"lateness": {"prices": "7d"}}, "lateness: unknown key(s) prices"),
        ({"lateness": {"stocks": "30d"}}, "lateness: unknown key(s) stocks"),
        ({"price": {"ewma_lamda": 0.9}}, "price: unknown key(s) ewma_lamda"),
        ({"leadtime": {"baselin_days": 200}}, "leadtime: unknown key(s) baselin_days"),
        ({"dependency": {"window_month": 6}}, "dependency: unknown key(s) window_month"),
        ({"normalisation": {"volatility_reference": 0.5}}, "normalisation: unknown key(s) volatility_reference"),
        ({"history": {"price_point": 10}}, "history: unknown key(s) price_point"),
        ({"history": {"stock_holder": 10}}, "history: unknown key(s) stock_holder"),
        ({"weights": {"concentraton": 0.3}}, "weights: unknown component(s) concentraton"),
        ({"governance": {"indicatr": "pv"}}, "governance: unknown key(s) indicatr"),
        ({"governance": {"scores": {"CN": 0.5}}}, "governance: unknown key(s) scores"),  # no typed-in scores
        ({"materials": {"tin": {"weight": {"leadtime": 1}}}}, "materials.tin: unknown key(s) weight"),
        (
            {"materials": {"tin": {"weights": {"lead_time": 1}}}},
            "materials.tin.weights: unknown component(s) lead_time",
        ),
        ({"materials": {"tin": {"eu_production_t": 0.0}}}, "materials.tin: unknown key(s) eu_production_t"),
        ({"materials": {"tin": {"consumption_t_per_yr": 900}}}, "materials.tin: unknown key(s) consumption_t_per_yr"),
        ({"rules": [{**RULE, "parameters": "supply"}]}, "rule 'price-change-1d' (rules[0]): unknown key(s) parameters"),
        ({"rules": [{**RULE, "sources": "CRMA"}]}, "rule 'price-change-1d' (rules[0]): unknown key(s) sources"),
        ({"rules": [{**RULE, "warnign": 5}]}, "rule 'price-change-1d' (rules[0]): unknown key(s) warnign"),
        (
            {"rules": [RULE], "materials": {"tin": {"rules": {"price-change-1d": {"critcal": 50}}}}},
            "rule 'price-change-1d' (materials.tin.rules): unknown key(s) critcal",
        ),
        ({"scoring": {}}, "file: unknown key(s) scoring"),
    ],
)
def test_a_typo_in_any_section_is_refused_with_the_entry_name(data, entry):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(entry), str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"leadtime": {"baseline_days": "a year"}}, "leadtime.baseline_days"),
        ({"dependency": {"window_months": 0}}, "dependency.window_months"),
        ({"normalisation": {"leadtime_ratio_ref": 1.0}}, "normalisation.leadtime_ratio_ref"),
        ({"history": {"evidence": True}}, "history.evidence"),
        ({"history": {"stock_holders": 0}}, "history.stock_holders"),
        ({"lateness": {"stock": "soon"}}, "lateness.stock"),
        ({"materials": {"tin": {"consumption_t_per_year": 0}}}, "materials.tin.consumption_t_per_year"),
        ({"materials": {"tin": {"consumption_t_per_year": "a lot"}}}, "materials.tin.consumption_t_per_year"),
        ({"rules": [{**RULE, "parameter": "prices"}]}, "rule 'price-change-1d' (rules[0]): parameter: 'prices' is not"),
        ({"rules": [{**RULE, "source": 65}]}, "rule 'price-change-1d' (rules[0]): source"),
        ({"lateness": {"price": "soon"}}, "lateness.price"),
        ({"governance": {"indicator": "xx"}}, "governance.indicator"),
        ({"governance": {"year": 1990}}, "governance.year"),
        ({"governance": {"year": 1997}}, "governance.year: no WGI pv estimates for 1997"),  # WGI skips 1997
    ],
)
def test_a_bad_value_is_refused_with_the_entry_name(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(data)


def test_every_section_of_the_shipped_file_is_a_known_model():
    import tomllib

    from services.scoring.config import DEFAULT_PATH, ScoringFile

    doc = tomllib.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert set(doc) <= set(ScoringFile.model_fields)
    assert load_config().governance_source.startswith("WGI PV.EST 2023")


def test_every_shipped_rule_names_its_crma_parameter_and_its_source():
    cfg = load_config()
    for material in ("gallium", "lithium", "nickel", "copper"):
        for rule in cfg.rules_for(material):
            assert rule.parameter in PARAMETERS, rule.name
            assert rule.source, rule.name
    by_name = {r.name: r for r in cfg.rules}
    assert (by_name["crma-single-country"].indicator, by_name["crma-single-country"].warning) == (
        "top_origin_share",
        0.65,
    )
    assert (by_name["strategic-dependency-hhi"].indicator, by_name["strategic-dependency-hhi"].warning) == (
        "concentration_hhi",
        4000.0,
    )
    assert "Art. 5(1)(b)" in by_name["crma-single-country"].source
    assert "SWD(2021) 352" in by_name["strategic-dependency-hhi"].source


def test_a_rule_without_a_parameter_takes_its_indicators_and_an_override_keeps_it():
    cfg = parse_config(
        {
            "rules": [
                RULE,
                {
                    "name": "lt",
                    "indicator": "leadtime_days.CN",
                    "warning": 90,
                    "clear": 60,
                    "parameter": "trade_barriers",
                },
            ],
            "materials": {"tin": {"rules": {"lt": {"warning": 100}}}},
        }
    )
    assert cfg.rules[0].parameter == "price_volatility"
    assert {r.name: r.parameter for r in cfg.rules_for("tin")}["lt"] == "trade_barriers"


def test_every_signal_kind_has_a_lateness_bound_of_its_own_and_the_section_names_no_other():
    from services.scoring.config import LatenessSection
    from shared.events import SIGNALS

    assert set(LatenessSection.model_fields) == set(SIGNALS)
    assert set(load_config().lateness) == set(SIGNALS)  # the shipped file states each bound
