"""`apply_event`: one input applied to a material's state, the one implementation live and backtest drive.

`apply_event` is pure: the same state, event and configuration always give the same outcome; it reads no
clock and does no I/O. Time is event time: each material keeps a watermark (its newest event time), inputs
too far behind it are rejected with a reason, later ones within the bound land in the right place of their
series and the indicators are recomputed from the series. Here: the appliers (one per kind of input), the
indicator groups they recompute, the rules over them, and the entry points.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any, Literal, cast

from services.scoring.config import ScoringConfig
from services.scoring.evidence import _breach
from services.scoring.indicators.composite import composite_score, normalise_components, points_per_component
from services.scoring.indicators.concentration import (
    governance_weighted_hhi,
    herfindahl_hirschman,
    import_amounts,
    import_reliance,
    import_shares,
    non_eu_share,
    split_extra_eu,
    top_origin,
)
from services.scoring.indicators.controls import apply_control_news, control_severity, controls_in_force, eased_measures
from services.scoring.indicators.leadtime import leadtime_indicators
from services.scoring.indicators.news import SIGNAL_TOPICS, NewsSignal, news_signal_indicators, window_changes_at
from services.scoring.indicators.rolling import ESTIMATE_RTOL, ESTIMATED
from services.scoring.rules import Rule, RuleState, evaluate_rule, resolve_removed
from services.scoring.state import (
    _NONE,
    DAY,
    Flow,
    MaterialState,
    PriceSeries,
    Quote,
    Stock,
    _as_of_date,
    _change,
    _dt,
    _evolve,
    _exact_price_group,
    _flat,
    _is_estimated,
    _settled,
    trade_window,
)
from shared.events import (
    BreachRaised,
    Classification,
    Event,
    IndicatorSnapshot,
    LeadTimeQuoted,
    NewsReported,
    PriceObserved,
    SignalEvent,
    StockReported,
    TradeFlowReported,
)

__all__ = ["Outcome", "Rejection", "apply_event", "apply_event_in_place", "indicator_snapshot"]


@dataclass(frozen=True)
class Rejection:
    """Why an input was not applied: `kind` for metrics and counts, `detail` in full for a reader.

    `str()` gives "kind: detail", the reason as logs and dead letters carry it.
    """

    kind: Literal["duplicate", "late", "irrelevant"]
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class Outcome:
    """What one event did: the new state, the breach transitions, the indicator snapshot, or why it was rejected."""

    state: MaterialState
    breaches: list[BreachRaised] = field(default_factory=list)
    snapshot: IndicatorSnapshot | None = None
    rejected: Rejection | None = None


_NO_RULE_STATE = RuleState()


def _fmt_duration(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:g} days" if days >= 1 else f"{seconds:g} seconds"


# --- applying inputs to state ----------------------------------------------------------------------------
# Each takes the input's event time `t` (epoch seconds), already computed by `_apply`.


def _apply_price(
    state: MaterialState, e: PriceObserved, event_id: str, cfg: ScoringConfig, own: bool, t: float
) -> MaterialState | Rejection:
    key = f"{e.source}|{e.series}"
    s = state.series.get(key)
    if s is not None:
        i = bisect_right(s.t, t)
        if i > 0 and s.t[i - 1] == t:
            return Rejection("duplicate", "this series already has a price at this time (same dedup key)")
        if not own:
            s = s.copy()
    else:
        i, s = 0, PriceSeries(e.source, e.series)
    s.add(i, t, e.price, event_id, e.classification.value, e.url, cfg.history.price_points)
    series = state.series if own else dict(state.series)
    series[key] = s
    if len(series) > cfg.history.price_series:
        # Forget the series that has gone quiet longest; bounded state beats a full archive here.
        stale = min((k for k in series if k != key), key=lambda k: (series[k].t[-1] if series[k].t else -math.inf, k))
        del series[stale]
    newest = key if len(series) == 1 else max(series, key=lambda k: (series[k].t[-1], k))
    return _change(state, own, series=series, active_series=newest)


def _apply_leadtime(
    state: MaterialState, e: LeadTimeQuoted, event_id: str, cfg: ScoringConfig, own: bool, t: float
) -> MaterialState | Rejection:
    origin = e.origin_country or ""
    for q in state.quotes:
        if q.t == t and q.origin == origin and q.supplier == e.supplier and q.source == e.source:
            return Rejection("duplicate", "this quote was already applied (same dedup key)")
    q = Quote(t, e.lead_time_days, origin, e.supplier, e.source, event_id, e.classification.value)
    quotes = sorted((*state.quotes, q), key=lambda x: (x.t, x.origin, x.supplier, x.source))
    same_origin = [x for x in quotes if x.origin == origin]
    if len(same_origin) > cfg.history.leadtime_quotes:
        drop = same_origin[0]
        quotes = [x for x in quotes if x is not drop]
    return _evolve(state, quotes=tuple(quotes))


def _apply_trade(
    state: MaterialState, e: TradeFlowReported, event_id: str, cfg: ScoringConfig, own: bool, t: float
) -> MaterialState | Rejection:
    if e.reporter != cfg.reporter:
        return Rejection("irrelevant", f"trade flow reported by {e.reporter}; scoring uses reporter {cfg.reporter}")
    existing = state.flows.get(e.period, ())
    for f in existing:
        if (f.partner, f.flow, f.hs_code, f.source) == (e.partner, e.flow, e.hs_code, e.source):
            return Rejection("duplicate", "this trade flow was already applied (same dedup key)")
    f = Flow(e.partner, e.flow, e.hs_code, e.quantity_kg, e.value_eur, e.source, event_id, e.classification.value, t)
    flows = {
        **state.flows,
        e.period: tuple(sorted((*existing, f), key=lambda x: (x.partner, x.flow, x.hs_code, x.source))),
    }
    for old in sorted(flows)[: -cfg.history.trade_periods]:
        del flows[old]
    return _evolve(state, flows=flows)


def _apply_stock(
    state: MaterialState, e: StockReported, event_id: str, cfg: ScoringConfig, own: bool, t: float
) -> MaterialState | Rejection:
    held = next((s for s in state.stocks if s.holder == e.holder), None)
    if held is not None and held.t == t and held.source == e.source:
        return Rejection("duplicate", "this stock report was already applied (same dedup key)")
    if held is not None and held.t > t:
        return Rejection("irrelevant", f"a newer stock report of holder {e.holder!r} is already held")
    stock = Stock(t, e.tonnes, e.holder, e.source, event_id, e.classification.value)
    stocks = sorted((*(s for s in state.stocks if s.holder != e.holder), stock), key=lambda s: (s.t, s.holder))
    return _evolve(state, stocks=tuple(stocks[-cfg.history.stock_holders :]))


def _apply_news(
    state: MaterialState, e: NewsReported, event_id: str, cfg: ScoringConfig, own: bool, t: float
) -> MaterialState | Rejection:
    if e.relevant and e.measure.value == "none" and e.topic in SIGNAL_TOPICS:
        return _apply_news_signal(state, e, event_id, cfg, t)
    if not e.relevant or e.measure.value == "none":
        return Rejection("irrelevant", "news item is not classified as an export-control measure")
    # The imposers when the producer said who they are; else, as older producers meant, every country named.
    imposers = e.countries if e.imposed_by is None else e.imposed_by
    if not imposers:
        if e.countries:
            return Rejection("irrelevant", "export-control news names no imposing country")
        return Rejection("irrelevant", "export-control news names no country")
    key = e.dedup_key()
    if key in state.news_keys:
        return Rejection("duplicate", "this news item was already applied (same dedup key)")
    effective = e.effective_date or e.published_at.astimezone(UTC).date()
    controls, changes = apply_control_news(
        state.controls,
        measure=e.measure.value,
        countries=sorted(set(imposers)),
        effective=effective,
        source=e.source,
        item_id=e.item_id,
        event_id=event_id,
        url=e.url,
        title=e.title,
        summary=e.summary,
        classification=e.classification.value,
        eases=eased_measures(e.evidence),
    )
    if len(controls) > cfg.history.controls:
        # Forget the longest-ended controls first; open ones are never dropped.
        ended = sorted((c.until or "", k) for k, c in controls.items() if c.until is not None)
        for _, k in ended[: len(controls) - cfg.history.controls]:
            del controls[k]
    news_keys = (*state.news_keys, key)[-cfg.history.seen_ids :]
    return _evolve(state, controls=controls, news_keys=news_keys)


def _apply_news_signal(
    state: MaterialState, e: NewsReported, event_id: str, cfg: ScoringConfig, t: float
) -> MaterialState | Rejection:
    key = e.dedup_key()
    if any(n.key == key for n in state.news_signals):
        return Rejection("duplicate", "this news item was already applied (same dedup key)")
    signal = NewsSignal(
        t,
        str(e.topic),
        key,
        e.title[:300],
        e.url,
        e.source,
        event_id,
        e.classification.value,
        None if e.leadtime_days is None else float(e.leadtime_days),
        e.price_change_pct,
    )
    signals = state.news_signals
    i = len(signals)
    while i > 0 and signals[i - 1].t > t:  # a late item lands in time order, usually at the end
        i -= 1
    kept = (*signals[:i], signal, *signals[i:])[-cfg.history.news_signals :]
    return _evolve(state, news_signals=kept)


# --- indicators --------------------------------------------------------------------------------------------


def _price_group(state: MaterialState, cfg: ScoringConfig, estimate: bool = True) -> dict[str, float | None]:
    """The price group as the series' running windows estimate it (see indicators/rolling.py).

    Good for deciding rules that are not near a threshold. The state remembers it is an estimate (`_estimate`:
    the group, its series and parameters), and `_settled` replaces it with the reference values before anything
    leaves the engine (breaches, snapshots, to_dict, flat_indicators). Without `estimate`, the reference values.
    """
    s = state.series.get(state.active_series or "")
    if s is None or not s.t:
        return {}
    if not estimate:
        return _exact_price_group(s, cfg.price)
    est = s.windows.estimate(s.t, s.p, s.r, cfg.price)
    if est is None:
        return _exact_price_group(s, cfg.price)
    state._estimate = (est, s, cfg.price)
    return est


def _leadtime_group(state: MaterialState, cfg: ScoringConfig) -> dict[str, float | None]:
    return leadtime_indicators(
        [(q.t, q.days, q.origin) for q in state.quotes],
        baseline_days=cfg.leadtime_baseline_days,
        trend_days=cfg.leadtime_trend_days,
    )


def _trade_group(state: MaterialState, cfg: ScoringConfig) -> dict[str, float | None]:
    periods = trade_window(state.flows, cfg.trade_window_months)
    flows = [f for p in periods for f in state.flows[p]]
    imports = [f for f in flows if f.flow == "import"]
    if not imports:
        return {}
    _, amounts = import_amounts((f.partner, f.quantity_kg, f.value_eur) for f in imports)
    # Concentration on extra-EU origins only; the intra-EU part shows in non_eu_share beside them.
    extra = split_extra_eu(amounts)
    top = top_origin(extra.shares)
    out: dict[str, float | None] = {
        "concentration_hhi": herfindahl_hirschman(extra.shares),
        "top_origin_share": top[1] if top else None,
        "non_eu_share": non_eu_share(import_shares(amounts)),
        "governance_hhi": governance_weighted_hhi(extra.shares, cfg.governance),
        "import_reliance": None,
    }
    production = cfg.eu_production_t.get(state.material)
    if production is not None and all(f.quantity_kg is not None for f in flows):
        years = 1.0 if len(periods[0]) == 4 else len(periods) / 12.0
        imported = sum(f.quantity_kg or 0.0 for f in imports) / 1000.0
        exported = sum(f.quantity_kg or 0.0 for f in flows if f.flow == "export") / 1000.0
        out["import_reliance"] = import_reliance(imported, exported, production * years)
    return out


def daily_net_imports_t(state: MaterialState, cfg: ScoringConfig) -> float | None:
    """Average daily net imports (t/day) over the trade window, when every flow has a quantity; else None."""
    periods = trade_window(state.flows, cfg.trade_window_months)
    flows = [f for p in periods for f in state.flows[p]]
    if not flows or any(f.quantity_kg is None for f in flows):
        return None
    years = 1.0 if len(periods[0]) == 4 else len(periods) / 12.0
    net_kg = math.fsum((f.quantity_kg or 0.0) * (1 if f.flow == "import" else -1) for f in flows)
    return net_kg / 1000.0 / (365.25 * years)


def _stock_group(state: MaterialState, cfg: ScoringConfig) -> dict[str, float | None]:
    """Stocks held and their days of cover: against net imports where trade has quantities, else consumption."""
    if not state.stocks:
        return {}
    tonnes = math.fsum(s.tonnes for s in state.stocks)
    daily = daily_net_imports_t(state, cfg)
    if daily is None or daily <= 0:
        consumption = cfg.consumption_t_per_year.get(state.material)
        daily = consumption / 365.25 if consumption else None
    return {"stock_tonnes": tonnes, "stock_daily_use_t": daily, "stock_cover_days": tonnes / daily if daily else None}


_NO_CONTROLS: dict[str, float | None] = {"export_controls_active": 0.0, "export_control_severity": control_severity([])}


def _controls_group(state: MaterialState) -> dict[str, float | None]:
    if not state.controls:
        return _NO_CONTROLS  # shared: groups are replaced, never changed
    active = controls_in_force(state.controls, _as_of_date(state))
    return {"export_controls_active": float(len(active)), "export_control_severity": control_severity(active)}


def _news_group(state: MaterialState) -> dict[str, float | None]:
    """Supply-signal news counted over the window that ends at the watermark; none without such news.

    Kept with the signals it was computed from (`_news`) until an item leaves the window: a price moves the
    watermark on every event, and counting a window of a hundred items each time halved the price path's speed.
    """
    signals = state.news_signals
    if not signals:
        return _NONE
    at = state.watermark or 0.0
    kept = state._news
    if kept is not None and kept[0] is signals and at < kept[1]:
        return kept[2]
    group = news_signal_indicators(signals, at)
    state._news = (signals, window_changes_at(signals, at), group)
    return group


_RECOMPUTE = {"price": _price_group, "leadtime": _leadtime_group, "trade": _trade_group, "stock": _stock_group}


def _score(
    ind: dict[str, float | None], material: str, cfg: ScoringConfig
) -> tuple[float | None, dict[str, float], dict[str, float]]:
    n = cfg.normalisation
    components = normalise_components(
        ind,
        volatility_ref=n.volatility_ref,
        price_trend_ref_pct=n.price_trend_ref_pct,
        leadtime_ratio_ref=n.leadtime_ratio_ref,
    )
    weights, points = _weights_for(cfg, material)
    present = tuple(components)
    kept = points.get(present)
    if kept is None:
        kept = points[present] = points_per_component(present, weights, n.min_coverage)
    score, contributions = composite_score(components, weights, n.min_coverage, kept)
    return score, components, contributions


_WEIGHTS: dict[tuple[int, str], tuple[ScoringConfig, dict[str, float], dict[tuple[str, ...], dict[str, float]]]] = {}


def _weights_for(cfg: ScoringConfig, material: str) -> tuple[dict[str, float], dict[tuple[str, ...], dict[str, float]]]:
    """cfg.weights_for(material), and its points per component by components present, kept per configuration."""
    hit = _WEIGHTS.get((id(cfg), material))
    if hit is None or hit[0] is not cfg:
        if len(_WEIGHTS) > 4096:
            _WEIGHTS.clear()
        hit = _WEIGHTS[(id(cfg), material)] = (cfg, cfg.weights_for(material), {})
    return hit[1], hit[2]


def _assessed(
    state: MaterialState, cfg: ScoringConfig
) -> tuple[dict[str, float | None], float | None, dict[str, float], dict[str, float]]:
    """Every indicator of the state with its risk score; the score's components and contributions."""
    ind = _flat(state.indicators)
    score, components, contributions = _score(ind, state.material, cfg)
    ind["risk_score"] = score
    return ind, score, components, contributions


def input_classification(state: MaterialState) -> Classification:
    """The most restricted classification of any input the state holds (conservative for snapshots)."""
    levels: set[str] = set().union(*(s.cls for s in state.series.values()))
    levels.update(q.cls for q in state.quotes)
    levels.update(f.cls for fs in state.flows.values() for f in fs)
    levels.update(c.classification for c in state.controls.values())
    levels.update(s.cls for s in state.stocks)
    levels.update(n.cls for n in state.news_signals)
    return Classification.most_restricted([Classification(c) for c in levels])


def evaluate_rules(
    state: MaterialState,
    ind: dict[str, float | None],
    cfg: ScoringConfig,
    own: bool = False,
    input_at: float | None = None,
) -> tuple[MaterialState, list[BreachRaised]]:
    """Every rule of the material against its indicators at the watermark; removed rules resolve their breach."""
    at = state.watermark or 0.0
    rules = cfg.rules_for(state.material)
    new_states: dict[str, RuleState] = {}
    breaches: list[BreachRaised] = []
    for rule in rules:
        prior = state.rules.get(rule.name, _NO_RULE_STATE)
        value = ind.get(rule.indicator)
        nxt, tr = evaluate_rule(rule, prior, value, at)
        if tr is not None and tr.firing:
            nxt = replace(nxt, indicator=rule.indicator, value=value)
        if nxt is not _NO_RULE_STATE and nxt != _NO_RULE_STATE:
            new_states[rule.name] = nxt
        if tr is not None and value is not None:
            breaches.append(_breach(state, rule, rule.name, rule.indicator, tr, value, cfg, input_at))
    names = {r.name for r in rules}
    for name in sorted(set(state.rules) - names):
        prior = state.rules[name]
        tr = resolve_removed(prior, at, "removed from the configuration or disabled for this material")
        if tr is not None:
            indicator = prior.indicator or ""
            value = ind.get(indicator)
            breaches.append(
                _breach(state, None, name, indicator, tr, value if value is not None else (prior.value or 0.0), cfg)
            )
    return _change(state, own, rules=new_states), breaches


# Indicators whose value may be an estimate (the risk score through the volatility component); a rule on one
# is decided from the estimate only when no threshold lies within this relative margin of it.
_APPROXIMATE = {*ESTIMATED, "risk_score"}
_MARGIN = 10 * ESTIMATE_RTOL
_COMPILED: dict[int, tuple[tuple[Rule, ...], frozenset[str], tuple]] = {}


def _band(x: float) -> tuple[float, float]:
    """Values v this close to threshold x: a superset of |v - x| <= _MARGIN (|v| + |x|)."""
    return x - 3 * _MARGIN * abs(x), x + 3 * _MARGIN * abs(x)


def _compiled(rules: tuple[Rule, ...]) -> tuple[frozenset[str], tuple]:
    """Per rule: the rule, its name and indicator, the sign of its direction, its first threshold, the bands
    near its first and near all its thresholds when its indicator may be estimated; built once per rule set."""
    hit = _COMPILED.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        table = []
        for r in rules:
            first = r.warning if r.warning is not None else r.critical
            assert first is not None
            near_all = tuple(_band(x) for x in (r.warning, r.critical, r.clear) if x is not None)
            approximate = r.indicator in _APPROXIMATE
            table.append(
                (
                    r,
                    r.name,
                    r.indicator,
                    1.0 if r.direction == "above" else -1.0,
                    first,
                    _band(first) if approximate else None,
                    near_all if approximate else (),
                )
            )
        hit = _COMPILED[id(rules)] = (rules, frozenset(r.name for r in rules), tuple(table))
    return hit[1], hit[2]


_UNDECIDED = "undecided"
_CHANGING = "changing"


def _quiet_rules(
    state: MaterialState, ind: dict[str, float | None], cfg: ScoringConfig, estimated: bool
) -> dict[str, RuleState] | str:
    """The rule states `evaluate_rules` would give when no breach changes; else why not.

    _CHANGING: a breach changes, decided by values that are exact (evaluate_rules may run on these).
    _UNDECIDED: with `estimated`, an estimated indicator is near a threshold of its rule or its breach changes:
    only the reference values can say.
    """
    names, table = _compiled(cfg.rules_for(state.material))
    prior_states = state.rules
    if prior_states and not names.issuperset(prior_states):
        return _UNDECIDED if estimated else _CHANGING  # a removed rule to resolve, with its indicator's value
    at = state.watermark or 0.0
    out: dict[str, RuleState] = {}
    changing = False
    for rule, name, indicator, sign, first, near_first, near_all in table:
        value = ind.get(indicator)
        prior = prior_states.get(name) if prior_states else None
        if value is None:
            if prior is not None:
                out[name] = prior
            continue
        if prior is None:
            # Nothing pending or open: only the first threshold can change anything.
            if estimated and near_first is not None and near_first[0] <= value <= near_first[1]:
                return _UNDECIDED
            if sign * value < sign * first:
                continue  # the common case
            prior = _NO_RULE_STATE
        elif estimated:
            for lo, hi in near_all:
                if lo <= value <= hi:
                    return _UNDECIDED
        nxt, tr = evaluate_rule(rule, prior, value, at)
        if tr is not None:
            if estimated and near_all:
                return _UNDECIDED  # the breach would carry an estimate
            changing = True
        if nxt is not _NO_RULE_STATE and nxt != _NO_RULE_STATE:
            out[name] = nxt
    return _CHANGING if changing else out


# --- the entry point -----------------------------------------------------------------------------------------

_Applier = Callable[[MaterialState, Any, str, ScoringConfig, bool, float], MaterialState | Rejection]
_APPLY: dict[type[Event], _Applier] = {
    PriceObserved: _apply_price,
    LeadTimeQuoted: _apply_leadtime,
    TradeFlowReported: _apply_trade,
    NewsReported: _apply_news,
    StockReported: _apply_stock,
}


def apply_event(state: MaterialState | None, event: Event, *, event_id: str, config: ScoringConfig) -> Outcome:
    """Apply one input event to a material's state: new state, breach transitions and snapshot, or a rejection.

    The given state is left as it was: the outcome's state is a new one (sharing what did not change).
    """
    return _apply(state, event, event_id, config, own=False, snapshot=True)


def apply_event_in_place(state: MaterialState | None, event: Event, *, event_id: str, config: ScoringConfig) -> Outcome:
    """`apply_event` for a driver that owns its states (the backtest): may change `state`, gives no snapshot.

    The state must have come from this function (or from_dict) alone: a state an `apply_event` outcome shares
    with an earlier one would change that one too.
    """
    return _apply(state, event, event_id, config, own=True, snapshot=False)


def _outcome(state: MaterialState, breaches: list[BreachRaised]) -> Outcome:
    """Outcome(state, breaches) without the frozen dataclass's per-field setattr: this runs once per input."""
    out = object.__new__(Outcome)
    out.__dict__.update(state=state, breaches=breaches, snapshot=None, rejected=None)
    return out


def _seen_set(state: MaterialState) -> set[str]:
    """The state's seen ids as a set, kept beside the list by the in-place driver (the list stays the record)."""
    cache = state._seen
    if cache is None or cache[0] is not state.seen_ids or len(cache[1]) != len(state.seen_ids):
        cache = state._seen = (state.seen_ids, set(state.seen_ids))
    return cache[1]


def _apply(
    state: MaterialState | None, event: Event, event_id: str, config: ScoringConfig, *, own: bool, snapshot: bool
) -> Outcome:
    apply = _APPLY.get(type(event))
    if apply is None:
        return Outcome(
            state or MaterialState(material=getattr(event, "material", "")),
            rejected=Rejection("irrelevant", f"{event.type} is not a scoring input"),
        )
    event = cast(SignalEvent, event)  # every kind _APPLY holds is one; cheaper than isinstance on an ABC
    material = event.material
    if state is None:
        state = MaterialState(material=material)
    if material != state.material:
        return Outcome(
            state, rejected=Rejection("irrelevant", f"event is about {material}, state is of {state.material}")
        )
    seen_set = _seen_set(state) if own else None
    if event_id in (state.seen_ids if seen_set is None else seen_set):
        return Outcome(state, rejected=Rejection("duplicate", "event id already applied"))
    kind = event.kind
    when = event.occurred_at
    t = when.timestamp()
    bound = config.lateness_for(kind)
    if state.watermark is not None and t < state.watermark - bound:
        return Outcome(
            state,
            rejected=Rejection(
                "late",
                (
                    f"{kind} event time {when.astimezone(UTC).isoformat()} is older than the watermark "
                    f"{_dt(state.watermark).isoformat()} minus the lateness bound of {_fmt_duration(bound)}"
                ),
            ),
        )
    applied = apply(state, event, event_id, config, own, t)
    if isinstance(applied, Rejection):
        return Outcome(state, rejected=applied)
    watermark = t if state.watermark is None or t > state.watermark else state.watermark
    limit = config.history.seen_ids
    if seen_set is not None:
        seen = state.seen_ids
        seen.append(event_id)
        seen_set.add(event_id)
        excess = len(seen) - limit
        if excess == 1:  # the usual case once the list is full
            seen_set.discard(seen[0])
            del seen[0]
        elif excess > 1:
            seen_set.difference_update(seen[:excess])
            del seen[:excess]
    else:
        seen = (state.seen_ids + [event_id])[-limit:]
    if own:
        applied.watermark, applied.seen_ids = watermark, seen
    else:
        applied = _evolve(applied, watermark=watermark, seen_ids=seen)
    groups = dict(applied.indicators)
    if kind == "price":  # estimated unless a snapshot will want the reference values anyway
        groups[kind] = _price_group(applied, config, estimate=not snapshot)
    elif kind in _RECOMPUTE:
        groups[kind] = _RECOMPUTE[kind](applied, config)
        if kind == "trade" and applied.stocks:  # days of cover are measured against net imports
            groups["stock"] = _stock_group(applied, config)
    groups["controls"] = _controls_group(applied)
    if applied.news_signals:  # the window slides with the watermark, whatever the input
        groups["news"] = _news_group(applied)
    applied.indicators = groups  # a copy made by this call, or the caller's own state
    estimated = _is_estimated(applied)
    ind, score, components, contributions = _assessed(applied, config)
    quiet = _quiet_rules(applied, ind, config, estimated)
    if not isinstance(quiet, str):
        breaches: list[BreachRaised] = []
        if quiet or applied.rules:
            applied = _change(applied, own, rules=quiet)
    else:
        # A breach changes. Rules on estimates are decided (none is near a threshold) unless undecided; the
        # breaches carry exact values either way (evaluate_rules stores a firing rule's value).
        if quiet is _UNDECIDED:
            _settled(applied)
            estimated = False
            ind, score, components, contributions = _assessed(applied, config)
        applied, breaches = evaluate_rules(applied, ind, config, own, input_at=t)
    if not snapshot:
        return _outcome(applied, breaches)
    if estimated:
        _settled(applied)
        ind, score, components, contributions = _assessed(applied, config)
    snapshot_ind = dict(ind)
    for name, value in components.items():
        snapshot_ind[f"component.{name}"] = value
    as_of = _as_of_date(applied)
    return Outcome(
        applied,
        breaches,
        IndicatorSnapshot.model_construct(
            material=applied.material,
            as_of=_dt(watermark),
            indicators=snapshot_ind,
            risk_score=score,
            components=contributions,
            export_controls=[
                {**c.to_dict(), "status": c.status(as_of)}
                for _, c in sorted(applied.controls.items())
                if c.status(as_of) != "lifted"
            ],
            classification=input_classification(applied),
        ),
    )


def indicator_snapshot(state: MaterialState, config: ScoringConfig) -> IndicatorSnapshot:
    """The indicator snapshot of a state, from its stored indicators: what `apply_event` gave with its outcome."""
    ind = state.flat_indicators()
    score, components, contributions = _score(ind, state.material, config)
    ind["risk_score"] = score
    for name, value in components.items():
        ind[f"component.{name}"] = value
    as_of = _as_of_date(state)
    return IndicatorSnapshot.model_construct(
        material=state.material,
        as_of=_dt(state.watermark or 0.0),
        indicators=ind,
        risk_score=score,
        components=contributions,
        export_controls=[
            {**c.to_dict(), "status": c.status(as_of)}
            for _, c in sorted(state.controls.items())
            if c.status(as_of) != "lifted"
        ],
        classification=input_classification(state),
    )
