"""The scoring configuration: rules, per-material overrides, weights, windows and governance, from TOML.

Loaded and validated once at start-up (or on reload) by pydantic models with `extra="forbid"` in every
section, so a misspelt key is an error naming it; each default is written once, in its section, and the sections
the core reads as they are (PriceParams, Normalisation, History) are those models. Governance and EU production
come from the reference tables (services/scoring/refdata), never from numbers typed into the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass as validated_dataclass

from services.scoring.indicators.concentration import EU_MEMBERS, governance_risk
from services.scoring.refdata.tables import ReferenceData, load_reference_data
from services.scoring.rules import Rule
from shared.durations import Duration

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
    "news_signals_30d": ("supply-signal news items in 30 days", "count"),
    "news_signals_30d.price": ("price news items in 30 days", "count"),
    "news_signals_30d.leadtime": ("lead-time news items in 30 days", "count"),
    "news_signals_30d.production": ("production news items in 30 days", "count"),
    "news_signals_30d.stockpile": ("stockpiling news items in 30 days", "count"),
    "news_signals_30d.tariff": ("tariff news items in 30 days", "count"),
    "news_signals_30d.trade_volume": ("export-volume news items in 30 days", "count"),
    "news_leadtime_days": ("lead time stated in news", "days"),
    "news_price_change_pct": ("price move stated in news", "pct"),
}
# The parameters whose evolution the Commission monitors under CRMA Art. 20(1)(a)-(g) (Regulation (EU)
# 2024/1252): every rule, and so every breach and alert, names the one it belongs to.
PARAMETERS = (
    "trade_flows",
    "supply_and_demand",
    "concentration_of_supply",
    "production_capacity",
    "price_volatility",
    "bottlenecks",
    "trade_barriers",
)
# The parameter a rule on an indicator belongs to when the rule does not name one.
INDICATOR_PARAMETERS: dict[str, str] = {
    **dict.fromkeys(
        (
            "price",
            "price_change_1d_pct",
            "price_change_7d_pct",
            "price_change_30d_pct",
            "price_volatility",
            "price_volatility_ewma",
            "price_volatility_ratio",
            "price_jump_z",
        ),
        "price_volatility",
    ),
    **dict.fromkeys(
        ("leadtime_days", "leadtime_baseline_days", "leadtime_ratio", "leadtime_trend_days_per_30d"), "bottlenecks"
    ),
    **dict.fromkeys(("concentration_hhi", "governance_hhi", "top_origin_share"), "concentration_of_supply"),
    **dict.fromkeys(("non_eu_share", "import_reliance"), "trade_flows"),
    **dict.fromkeys(("export_controls_active", "export_control_severity"), "trade_barriers"),
    "stock_cover_days": "supply_and_demand",
    # A burst of supply news of every kind is about supply as a whole; by topic, about the parameter it names.
    "news_signals_30d": "supply_and_demand",
    "news_signals_30d.price": "price_volatility",
    "news_signals_30d.leadtime": "bottlenecks",
    "news_signals_30d.production": "production_capacity",
    "news_signals_30d.stockpile": "supply_and_demand",
    "news_signals_30d.tariff": "trade_barriers",
    "news_signals_30d.trade_volume": "trade_flows",
    "news_leadtime_days": "bottlenecks",
    "news_price_change_pct": "price_volatility",
    # The composite's largest default weights (concentration, export controls) are about who supplies.
    "risk_score": "concentration_of_supply",
}


def parameter_of(indicator: str) -> str:
    """The CRMA Art. 20(1) parameter an indicator informs ("leadtime_days.CN" like "leadtime_days")."""
    known = INDICATOR_PARAMETERS.get(indicator)
    return known if known is not None else INDICATOR_PARAMETERS.get(indicator.split(".", 1)[0], "supply_and_demand")


COMPONENTS = ("volatility", "price_trend", "leadtime", "concentration", "export_controls")
_SLUG = r"[a-z0-9]+(-[a-z0-9]+)*"


class ConfigError(ValueError):
    """The scoring configuration is invalid; the message names the rule or setting."""


# --- the file, section by section ---------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class LatenessSection(_Section):
    price: Duration | None = None
    leadtime: Duration | None = None
    news: Duration | None = None
    trade: Duration | None = None
    stock: Duration | None = None


# The sections the scoring core reads as they are: frozen dataclasses (so `dataclasses.replace` works) that pydantic
# validates in the file, their defaults written here only. Strict numbers: "30" or true is no window.
Count = Annotated[int, Strict()]
Real = Annotated[float, Strict()]
_PARAMS = ConfigDict(extra="forbid", allow_inf_nan=False)


@validated_dataclass(frozen=True, config=_PARAMS)
class PriceParams:
    """[price]: the windows and constants of the price indicators (docs/methodology.md)."""

    volatility_window: Count = Field(default=30, ge=2)
    ewma_lambda: Real = Field(default=0.94, gt=0, lt=1)
    ewma_window: Count = Field(default=100, ge=1)
    short_window: Count = Field(default=10, ge=2)
    long_window: Count = Field(default=60, ge=3)
    jump_window: Count = Field(default=60, ge=2)
    jump_min_returns: Count = Field(default=20, ge=2)
    jump_sd_floor: Real = 0.10  # annualised

    @model_validator(mode="after")
    def _windows(self) -> PriceParams:
        if self.short_window >= self.long_window:
            raise ValueError("short_window must be shorter than price.long_window")
        if self.jump_min_returns > self.jump_window:
            raise ValueError("jump_min_returns must not exceed price.jump_window (the returns a z-score sees)")
        if self.jump_sd_floor < 0:
            raise ValueError("jump_sd_floor: an annualised volatility cannot be negative")
        return self


class LeadtimeSection(_Section):
    baseline_days: float = Field(default=365.0, gt=0)
    trend_days: float = Field(default=90.0, gt=0)


class DependencySection(_Section):
    reporter: str = "EU27"
    window_months: int = Field(default=12, ge=1)


@validated_dataclass(frozen=True, config=_PARAMS)
class Normalisation:
    """[normalisation]: the values at which a component of the composite scores 1."""

    volatility_ref: Real = Field(default=0.6, gt=0)
    price_trend_ref_pct: Real = Field(default=50.0, gt=0)
    leadtime_ratio_ref: Real = Field(default=2.0, gt=1)
    min_coverage: Real = Field(default=0.5, ge=0, le=1)


@validated_dataclass(frozen=True, config=_PARAMS)
class History:
    """[history]: how much of each input a material's state keeps."""

    price_points: Count = Field(default=400, ge=1)
    price_series: Count = Field(default=3, ge=1)
    leadtime_quotes: Count = Field(default=60, ge=1)
    trade_periods: Count = Field(default=24, ge=1)
    evidence: Count = Field(default=5, ge=1)
    seen_ids: Count = Field(default=200, ge=1)
    controls: Count = Field(default=50, ge=1)
    stock_holders: Count = Field(default=20, ge=1)
    news_signals: Count = Field(default=100, ge=1)


class WeightsSection(_Section):
    volatility: float | None = Field(default=None, ge=0)
    price_trend: float | None = Field(default=None, ge=0)
    leadtime: float | None = Field(default=None, ge=0)
    concentration: float | None = Field(default=None, ge=0)
    export_controls: float | None = Field(default=None, ge=0)

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class GovernanceSection(_Section):
    """Which WGI dimension and year the governance-weighted HHI reads from the reference tables."""

    indicator: Literal["va", "pv", "ge", "rq", "rl", "cc"] = "pv"
    year: int | None = Field(default=None, ge=1996)  # None: the latest year in the reference data


class RuleSpec(_Section):
    """The keys a rule may have; build_rule checks what they mean together."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)
    name: str | None = None
    indicator: str | None = None
    direction: str | None = None
    warning: Real | None = None
    critical: Real | None = None
    clear: Real | None = None
    for_: Duration | None = Field(default=None, alias="for")
    description: str | None = None
    disabled: bool = False
    parameter: str | None = None
    source: str | None = None  # the document the threshold comes from

    @field_validator("parameter")
    @classmethod
    def _crma_parameter(cls, value: str | None) -> str | None:
        if value is not None and value not in PARAMETERS:
            raise ValueError(
                f"{value!r} is not a CRMA Art. 20(1) monitoring parameter (known: {', '.join(PARAMETERS)})"
            )
        return value


class MaterialSection(_Section):
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)  # each validated as a RuleSpec, by name
    weights: WeightsSection | None = None
    # EU consumption in tonnes a year: days of stock cover where the trade data has no quantities.
    consumption_t_per_year: float | None = Field(default=None, gt=0)


class ScoringFile(_Section):
    lateness: LatenessSection = LatenessSection()
    price: PriceParams = PriceParams()
    leadtime: LeadtimeSection = LeadtimeSection()
    dependency: DependencySection = DependencySection()
    normalisation: Normalisation = Normalisation()
    history: History = History()
    weights: WeightsSection = WeightsSection()
    governance: GovernanceSection = GovernanceSection()
    rules: list[dict[str, Any]] = Field(default_factory=list)  # each validated as a RuleSpec, by name
    materials: dict[str, MaterialSection] = Field(default_factory=dict)


def _describe(exc: ValidationError, where: str = "") -> str:
    """One line per problem, each naming the entry: "leadtime: unknown key(s) baselin_days"."""
    unknown: dict[str, list[str]] = {}
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's, a dataclass's
            unknown.setdefault(".".join(loc[:-1]), []).append(loc[-1])
            continue
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{'.'.join(loc) or where or 'file'}: {msg}" if loc or not where else msg)
    for parent, keys in unknown.items():
        thing = "component(s)" if parent.endswith("weights") else "key(s)"
        known = f" (known: {', '.join(COMPONENTS)})" if thing == "component(s)" else ""
        text = f"unknown {thing} {', '.join(sorted(keys))}{known}"
        problems.insert(0, f"{parent}: {text}" if parent else (text if where else f"file: {text}"))
    text = "; ".join(problems)
    return f"{where}: {text}" if where else text


@dataclass(frozen=True, kw_only=True)
class ScoringConfig:
    """Everything the scoring core needs, validated; every default is the file's (the sections above)."""

    rules: tuple[Rule, ...]
    material_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    material_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    lateness: dict[str, float] = field(default_factory=dict)  # kind -> seconds
    price: PriceParams = PriceParams()
    leadtime_baseline_days: float
    leadtime_trend_days: float
    reporter: str
    trade_window_months: int
    governance: dict[str, float] = field(default_factory=dict)  # ISO alpha-2 -> risk 0..1, published only
    governance_source: str = ""
    eu_production_t: dict[str, float] = field(default_factory=dict)  # material -> t/year, where USGS says it
    eu_production_source: str = ""
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


def build_rule(name: str, spec: dict[str, Any], where: str, base: Rule | None = None) -> Rule:
    """A validated rule from its TOML table, on top of a default rule when it overrides one."""
    label = f"rule {name!r} ({where})"
    try:
        given = RuleSpec.model_validate(spec)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, label)) from exc

    def value(key: str, inherited: Any) -> Any:
        """The table's value for a key it sets, else the overridden rule's."""
        return getattr(given, key) if key in given.model_fields_set else inherited

    indicator = value("indicator", base.indicator if base else None)
    if indicator is None:
        raise ConfigError(f"{label}: missing 'indicator'")
    if indicator not in INDICATORS and not re.fullmatch(r"leadtime_days\.[A-Z]{2}", indicator):
        raise ConfigError(f"{label}: unknown indicator {indicator!r} (known: {', '.join(sorted(INDICATORS))})")
    direction = value("direction", base.direction if base else "above")
    if direction not in ("above", "below"):
        raise ConfigError(f"{label}: direction must be 'above' or 'below', got {direction!r}")
    warning = value("warning", base.warning if base else None)
    critical = value("critical", base.critical if base else None)
    if warning is None and critical is None:
        raise ConfigError(f"{label}: needs a warning or a critical threshold")
    first = warning if warning is not None else critical
    clear = value("clear", base.clear if base is not None else first)
    if clear is None:
        raise ConfigError(f"{label}: clear must be a number")
    sign = 1 if direction == "above" else -1
    if warning is not None and critical is not None and sign * (critical - warning) < 0:
        raise ConfigError(f"{label}: critical {critical:g} must be {direction} warning {warning:g}")
    if sign * (first - clear) < 0:
        raise ConfigError(f"{label}: clear {clear:g} must not be {direction} the first threshold {first:g}")
    for_seconds = value("for_", base.for_seconds if base else 0.0)
    if for_seconds is None:
        raise ConfigError(f"{label}: for must be a duration")
    description = value("description", base.description if base else "") or ""
    # RuleSpec has checked a given parameter; an override on another indicator takes that indicator's.
    parameter = value("parameter", base.parameter if base and indicator == base.indicator else None) or parameter_of(
        indicator
    )
    source = value("source", base.source if base else "") or ""
    return Rule(
        name=name,
        indicator=indicator,
        direction=direction,
        warning=warning,
        critical=critical,
        clear=clear,
        for_seconds=for_seconds,
        description=description,
        parameter=parameter,
        source=source,
    )


def parse_config(data: dict[str, Any], refdata: ReferenceData | None = None) -> ScoringConfig:
    """A validated ScoringConfig from parsed TOML; governance and EU production from `refdata` (the shipped)."""
    try:
        doc = ScoringFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, spec in enumerate(doc.rules):
        name = spec.get("name")
        if not isinstance(name, str) or not re.fullmatch(_SLUG, name):
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
    consumption: dict[str, float] = {}
    for material, table in doc.materials.items():
        where = f"materials.{material}"
        if not re.fullmatch(_SLUG, material):
            raise ConfigError(f"{where}: material ids are lower-case slugs like 'rare-earths'")
        if table.weights is not None:
            material_weights[material] = table.weights.given()
        if table.consumption_t_per_year is not None:
            consumption[material] = table.consumption_t_per_year
        if table.rules:
            merged = dict(defaults)
            for name, spec in table.rules.items():
                if spec.get("disabled"):
                    if name not in merged:
                        raise ConfigError(f"rule {name!r} ({where}): disables a rule that does not exist")
                    del merged[name]
                    continue
                merged[name] = build_rule(name, spec, f"{where}.rules", defaults.get(name))
            material_rules[material] = tuple(merged.values())

    governance, governance_source = _governance(doc.governance, refdata)
    eu_production, eu_production_source = _eu_production(refdata)
    return ScoringConfig(
        rules=tuple(rules),
        material_rules=material_rules,
        weights=doc.weights.given(),
        material_weights=material_weights,
        lateness={k: v for k, v in doc.lateness.model_dump().items() if v is not None},
        price=doc.price,
        leadtime_baseline_days=doc.leadtime.baseline_days,
        leadtime_trend_days=doc.leadtime.trend_days,
        reporter=doc.dependency.reporter,
        trade_window_months=doc.dependency.window_months,
        governance=governance,
        governance_source=governance_source,
        eu_production_t=eu_production,
        eu_production_source=eu_production_source,
        consumption_t_per_year=consumption,
        normalisation=doc.normalisation,
        history=doc.history,
    )


def _governance(section: GovernanceSection, refdata: ReferenceData | None) -> tuple[dict[str, float], str]:
    """Governance risk (2.5 - estimate) / 5 per country with a published WGI estimate in the chosen year."""
    refdata = refdata or load_reference_data()
    years = refdata.governance_years(section.indicator)
    year = section.year if section.year is not None else (years[-1] if years else None)
    if year is None or year not in years:
        raise ConfigError(
            f"governance.year: no WGI {section.indicator} estimates for {year} in the reference "
            f"data (years: {years[0] if years else '-'}..{years[-1] if years else '-'})"
        )
    estimates = refdata.governance_estimates(section.indicator, year)
    source = f"WGI {section.indicator.upper()}.EST {year}, risk (2.5 - estimate) / 5; {refdata.citation('governance')}"
    return {c: governance_risk(e) for c, e in estimates.items()}, source


def _eu_production(refdata: ReferenceData | None) -> tuple[dict[str, float], str]:
    """EU-27 production per material (tonnes/year, latest USGS year) where the reference data can say it."""
    refdata = refdata or load_reference_data()
    out = {}
    for material in sorted({r["material"] for r in refdata.production}):
        years = refdata.production_years(material)
        tonnes = refdata.eu_production_t(material, years[-1], EU_MEMBERS) if years else None
        if tonnes is not None:
            out[material] = tonnes
    return out, f"sum of EU member states' rows in {refdata.citation('production')}"


def load_config(path: Path | None = None, refdata: ReferenceData | None = None) -> ScoringConfig:
    """The scoring configuration from a TOML file (default: the shipped scoring.toml)."""
    path = path or DEFAULT_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from exc
    return parse_config(data, refdata)
