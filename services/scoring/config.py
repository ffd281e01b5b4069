"""The scoring configuration: rules, per-material overrides, weights, windows and governance scores, from TOML.

Loaded and validated once at start-up (or on reload); every error names the rule or setting at fault.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.scoring.rules import Rule

DEFAULT_PATH = Path(__file__).resolve().parent / "scoring.toml"

# Every indicator a rule may name: its plain-language label and how its value reads in a summary.
INDICATORS: dict[str, tuple[str, str]] = {
    "price": ("price", "number"),
    "price_change_1d_pct": ("1-day price change", "pct"),
    "price_change_7d_pct": ("7-day price change", "pct"),
    "price_change_30d_pct": ("30-day price change", "pct"),
    "price_volatility": ("annualised price volatility", "fraction"),
    "price_volatility_ewma": ("annualised EWMA price volatility", "fraction"),
    "price_volatility_ratio": ("short/long volatility ratio", "ratio"),
    "price_jump_z": ("price jump z-score", "z"),
    "leadtime_days": ("quoted lead time", "days"),
    "leadtime_baseline_days": ("lead-time baseline", "days"),
    "leadtime_ratio": ("lead time against its baseline", "ratio"),
    "leadtime_trend_days_per_30d": ("lead-time trend", "days_per_30d"),
    "concentration_hhi": ("import concentration (HHI)", "index"),
    "governance_hhi": ("governance-weighted import concentration", "index"),
    "top_origin_share": ("share of the largest origin", "fraction"),
    "non_eu_share": ("share of imports from outside the EU", "fraction"),
    "import_reliance": ("import reliance", "fraction"),
    "export_controls_active": ("export controls in force", "count"),
    "export_control_severity": ("severity of export controls in force", "number"),
    "risk_score": ("risk score", "score"),
    "stock_tonnes": ("stocks held", "tonnes"),
    "stock_cover_days": ("stock cover", "days"),
}
# The parameters whose evolution the Commission monitors under CRMA Art. 20(1)(a)-(g) (Regulation (EU)
# 2024/1252): every rule, and so every breach and alert, names the one it belongs to.
PARAMETERS = ("trade_flows", "supply_and_demand", "concentration_of_supply", "production_capacity",
              "price_volatility", "bottlenecks", "trade_barriers")
# The parameter a rule on an indicator belongs to when the rule does not name one.
INDICATOR_PARAMETERS: dict[str, str] = {
    **dict.fromkeys(("price", "price_change_1d_pct", "price_change_7d_pct", "price_change_30d_pct",
                     "price_volatility", "price_volatility_ewma", "price_volatility_ratio", "price_jump_z"),
                    "price_volatility"),
    **dict.fromkeys(("leadtime_days", "leadtime_baseline_days", "leadtime_ratio", "leadtime_trend_days_per_30d"),
                    "bottlenecks"),
    **dict.fromkeys(("concentration_hhi", "governance_hhi", "top_origin_share"), "concentration_of_supply"),
    **dict.fromkeys(("non_eu_share", "import_reliance"), "trade_flows"),
    **dict.fromkeys(("export_controls_active", "export_control_severity"), "trade_barriers"),
    "stock_cover_days": "supply_and_demand",
    # The composite's largest default weights (concentration, export controls) are about who supplies.
    "risk_score": "concentration_of_supply",
}


def parameter_of(indicator: str) -> str:
    """The CRMA Art. 20(1) parameter an indicator informs ("leadtime_days.CN" like "leadtime_days")."""
    return INDICATOR_PARAMETERS.get(indicator.split(".", 1)[0], "supply_and_demand")


COMPONENTS = ("volatility", "price_trend", "leadtime", "concentration", "export_controls")
KINDS = ("price", "news", "trade", "leadtime", "stock")
_RULE_KEYS = {"name", "indicator", "direction", "warning", "critical", "clear", "for", "description", "disabled",
              "parameter", "source"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ConfigError(ValueError):
    """The scoring configuration is invalid; the message names the rule or setting."""


def parse_duration(text: str | int | float, where: str) -> float:
    """Seconds from "30s", "15m", "2h", "7d" or "2w" (a bare number is seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ConfigError(f"{where}: {text!r} is not a duration like '0s', '12h', '7d' or '2w'")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds < 0:
        raise ConfigError(f"{where}: a duration cannot be negative")
    return seconds


@dataclass(frozen=True)
class PriceParams:
    volatility_window: int = 30
    ewma_lambda: float = 0.94
    ewma_window: int = 100
    short_window: int = 10
    long_window: int = 60
    jump_window: int = 60
    jump_min_returns: int = 20
    jump_sd_floor: float = 0.10  # annualised; see docs/methodology.md


@dataclass(frozen=True)
class Normalisation:
    volatility_ref: float = 0.6
    price_trend_ref_pct: float = 50.0
    leadtime_ratio_ref: float = 2.0
    min_coverage: float = 0.5


@dataclass(frozen=True)
class History:
    price_points: int = 400
    price_series: int = 3
    leadtime_quotes: int = 60
    trade_periods: int = 24
    evidence: int = 5
    seen_ids: int = 200
    controls: int = 50
    stock_holders: int = 20


@dataclass(frozen=True)
class ScoringConfig:
    """Everything the scoring core needs, validated."""

    rules: tuple[Rule, ...]
    material_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    material_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    lateness: dict[str, float] = field(default_factory=dict)  # kind -> seconds
    price: PriceParams = PriceParams()
    leadtime_baseline_days: float = 365.0
    leadtime_trend_days: float = 90.0
    reporter: str = "EU27"
    trade_window_months: int = 12
    governance: dict[str, float] = field(default_factory=dict)
    governance_default: float = 0.5
    governance_source: str = ""
    eu_production_t: dict[str, float] = field(default_factory=dict)
    # EU consumption per year, for days of stock cover where trade data has no quantities.
    consumption_t_per_year: dict[str, float] = field(default_factory=dict)
    normalisation: Normalisation = Normalisation()
    history: History = History()

    def rules_for(self, material: str) -> tuple[Rule, ...]:
        """The rules that apply to a material: defaults with its overrides."""
        return self.material_rules.get(material, self.rules)

    def weights_for(self, material: str) -> dict[str, float]:
        """The composite weights of a material: defaults with its overrides."""
        return {**self.weights, **self.material_weights.get(material, {})}

    def lateness_for(self, kind: str) -> float:
        """How far (seconds) behind the watermark an event of this kind may arrive and still count."""
        return self.lateness.get(kind, 7 * 86400.0)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _optional_number(value: Any, where: str) -> float | None:
    return None if value is None else _number(value, where)


def build_rule(name: str, spec: dict[str, Any], where: str, base: Rule | None = None) -> Rule:
    """A validated rule from its TOML table, on top of a default rule when it overrides one."""
    label = f"rule {name!r} ({where})"
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
    indicator = spec.get("indicator", base.indicator if base else None)
    if indicator is None:
        raise ConfigError(f"{label}: missing 'indicator'")
    if indicator not in INDICATORS and not re.fullmatch(r"leadtime_days\.[A-Z]{2}", str(indicator)):
        raise ConfigError(f"{label}: unknown indicator {indicator!r} (known: {', '.join(sorted(INDICATORS))})")
    direction = spec.get("direction", base.direction if base else "above")
    if direction not in ("above", "below"):
        raise ConfigError(f"{label}: direction must be 'above' or 'below', got {direction!r}")
    warning = _optional_number(spec["warning"], f"{label} warning") if "warning" in spec else (
        base.warning if base else None)
    critical = _optional_number(spec["critical"], f"{label} critical") if "critical" in spec else (
        base.critical if base else None)
    if warning is None and critical is None:
        raise ConfigError(f"{label}: needs a warning or a critical threshold")
    first = warning if warning is not None else critical
    assert first is not None
    if "clear" in spec:
        clear = _number(spec["clear"], f"{label} clear")
    elif base is not None:
        clear = base.clear
    else:
        clear = first
    sign = 1 if direction == "above" else -1
    if warning is not None and critical is not None and sign * (critical - warning) < 0:
        raise ConfigError(f"{label}: critical {critical:g} must be {direction} warning {warning:g}")
    if sign * (first - clear) < 0:
        raise ConfigError(f"{label}: clear {clear:g} must not be {direction} the first threshold {first:g}")
    for_seconds = parse_duration(spec["for"], f"{label} for") if "for" in spec else (base.for_seconds if base else 0.0)
    description = str(spec.get("description", base.description if base else ""))
    parameter = spec.get("parameter", base.parameter if base and indicator == base.indicator else None) or \
        parameter_of(str(indicator))
    if parameter not in PARAMETERS:
        raise ConfigError(f"{label}: parameter {parameter!r} is not a CRMA Art. 20(1) monitoring parameter "
                          f"(known: {', '.join(PARAMETERS)})")
    source = str(spec.get("source", base.source if base else ""))
    return Rule(name=name, indicator=str(indicator), direction=direction, warning=warning, critical=critical,
                clear=clear, for_seconds=for_seconds, description=description, parameter=parameter, source=source)


def _weights(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of component = weight")
    out = {}
    for k, v in table.items():
        if k not in COMPONENTS:
            raise ConfigError(f"{where}: unknown component {k!r} (known: {', '.join(COMPONENTS)})")
        w = _number(v, f"{where}.{k}")
        if w < 0:
            raise ConfigError(f"{where}.{k}: a weight cannot be negative")
        out[k] = w
    return out


def _int(section: dict, key: str, default: int, where: str, minimum: int = 1) -> int:
    v = section.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"{where}.{key}: expected an integer >= {minimum}, got {v!r}")
    return v


def parse_config(data: dict[str, Any]) -> ScoringConfig:
    """A validated ScoringConfig from parsed TOML."""
    known = {"lateness", "price", "leadtime", "dependency", "normalisation", "history", "weights", "governance",
             "rules", "materials"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))}")

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, spec in enumerate(data.get("rules", [])):
        name = spec.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
            raise ConfigError(f"rules[{i}]: 'name' must be a lower-case slug like 'price-change-1d', got {name!r}")
        if name in seen:
            raise ConfigError(f"rule {name!r}: defined twice")
        seen.add(name)
        if spec.get("disabled"):
            continue
        rules.append(build_rule(name, spec, f"rules[{i}]"))
    defaults = {r.name: r for r in rules}

    material_rules: dict[str, tuple[Rule, ...]] = {}
    material_weights: dict[str, dict[str, float]] = {}
    eu_production: dict[str, float] = {}
    consumption: dict[str, float] = {}
    for material, table in data.get("materials", {}).items():
        where = f"materials.{material}"
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", material):
            raise ConfigError(f"{where}: material ids are lower-case slugs like 'rare-earths'")
        unknown = set(table) - {"rules", "weights", "eu_production_t", "consumption_t_per_year"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "weights" in table:
            material_weights[material] = _weights(table["weights"], f"{where}.weights")
        if "eu_production_t" in table:
            eu_production[material] = _number(table["eu_production_t"], f"{where}.eu_production_t")
        if "consumption_t_per_year" in table:
            consumption[material] = _number(table["consumption_t_per_year"], f"{where}.consumption_t_per_year")
            if consumption[material] <= 0:
                raise ConfigError(f"{where}.consumption_t_per_year: must be positive")
        if "rules" in table:
            merged = dict(defaults)
            for name, spec in table["rules"].items():
                if spec.get("disabled"):
                    if name not in merged:
                        raise ConfigError(f"rule {name!r} ({where}): disables a rule that does not exist")
                    del merged[name]
                    continue
                merged[name] = build_rule(name, spec, f"{where}.rules", defaults.get(name))
            material_rules[material] = tuple(merged.values())

    lateness_table = data.get("lateness", {})
    lateness = {k: parse_duration(v, f"lateness.{k}") for k, v in lateness_table.items()}
    bad = set(lateness) - set(KINDS)
    if bad:
        raise ConfigError(f"lateness: unknown kind(s) {', '.join(sorted(bad))} (known: {', '.join(KINDS)})")

    p = data.get("price", {})
    unknown_p = set(p) - set(PriceParams.__dataclass_fields__)
    if unknown_p:
        raise ConfigError(f"price: unknown key(s) {', '.join(sorted(unknown_p))}")
    lam = _number(p.get("ewma_lambda", 0.94), "price.ewma_lambda")
    if not 0 < lam < 1:
        raise ConfigError("price.ewma_lambda: must lie strictly between 0 and 1")
    price = PriceParams(
        volatility_window=_int(p, "volatility_window", 30, "price", 2), ewma_lambda=lam,
        ewma_window=_int(p, "ewma_window", 100, "price"), short_window=_int(p, "short_window", 10, "price", 2),
        long_window=_int(p, "long_window", 60, "price", 3), jump_window=_int(p, "jump_window", 60, "price", 2),
        jump_min_returns=_int(p, "jump_min_returns", 20, "price", 2),
        jump_sd_floor=_number(p.get("jump_sd_floor", 0.10), "price.jump_sd_floor"))
    if price.short_window >= price.long_window:
        raise ConfigError("price.short_window: must be shorter than price.long_window")
    if price.jump_min_returns > price.jump_window:
        raise ConfigError("price.jump_min_returns: must not exceed price.jump_window (the returns a z-score sees)")
    if price.jump_sd_floor < 0:
        raise ConfigError("price.jump_sd_floor: an annualised volatility cannot be negative")

    lt = data.get("leadtime", {})
    dep = data.get("dependency", {})
    gov = data.get("governance", {})
    scores = {}
    for country, v in gov.get("scores", {}).items():
        s = _number(v, f"governance.scores.{country}")
        if not re.fullmatch(r"[A-Z]{2}", country) or not 0 <= s <= 1:
            raise ConfigError(f"governance.scores.{country}: needs an ISO alpha-2 code and a score in 0..1")
        scores[country] = s
    default_gov = _number(gov.get("default", 0.5), "governance.default")
    norm = data.get("normalisation", {})
    normalisation = Normalisation(
        volatility_ref=_number(norm.get("volatility_ref", 0.6), "normalisation.volatility_ref"),
        price_trend_ref_pct=_number(norm.get("price_trend_ref_pct", 50.0), "normalisation.price_trend_ref_pct"),
        leadtime_ratio_ref=_number(norm.get("leadtime_ratio_ref", 2.0), "normalisation.leadtime_ratio_ref"),
        min_coverage=_number(norm.get("min_coverage", 0.5), "normalisation.min_coverage"))
    if normalisation.volatility_ref <= 0 or normalisation.price_trend_ref_pct <= 0 or \
            normalisation.leadtime_ratio_ref <= 1 or not 0 <= normalisation.min_coverage <= 1:
        raise ConfigError("normalisation: references must be positive (leadtime_ratio_ref above 1), "
                          "min_coverage within 0..1")
    h = data.get("history", {})
    history = History(**{k: _int(h, k, getattr(History(), k), "history") for k in History.__dataclass_fields__})
    unknown_h = set(h) - set(History.__dataclass_fields__)
    if unknown_h:
        raise ConfigError(f"history: unknown key(s) {', '.join(sorted(unknown_h))}")

    return ScoringConfig(
        rules=tuple(rules), material_rules=material_rules,
        weights=_weights(data.get("weights", {}), "weights"), material_weights=material_weights,
        lateness=lateness, price=price,
        leadtime_baseline_days=_number(lt.get("baseline_days", 365), "leadtime.baseline_days"),
        leadtime_trend_days=_number(lt.get("trend_days", 90), "leadtime.trend_days"),
        reporter=str(dep.get("reporter", "EU27")),
        trade_window_months=_int(dep, "window_months", 12, "dependency"),
        governance=scores, governance_default=default_gov, governance_source=str(gov.get("source", "")),
        eu_production_t=eu_production, consumption_t_per_year=consumption, normalisation=normalisation, history=history)


def load_config(path: Path | None = None) -> ScoringConfig:
    """The scoring configuration from a TOML file (default: the shipped scoring.toml)."""
    path = path or DEFAULT_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from exc
    return parse_config(data)
