"""A run of a material's prices applied at once: what `apply_event_in_place` gives for each input, faster.

Replaying a backfill through `apply_event_in_place` spends most of each input deciding that nothing happens.
When a material's inputs are prices of one series in strictly increasing event time with distinct ids (so
none can be late, a duplicate or switch the active series), every price indicator of every input is computed
at once with numpy, and each rule's state machine runs only where it can change: from the first input whose
value is at, beyond or near the rule's first threshold until its state is back to nothing. The run starts from
no state (`apply_price_history`, the backtest) or continues a state that holds nothing but that series
(`apply_price_run`, the live worker with a batch of a backfill): its prices are the arrays' first part.

The arrays are estimates of the reference values (`indicators/volatility.py`) within `ESTIMATE_RTOL`, exactly
like `indicators/rolling.py`'s, and are used the same way: a rule on an estimated indicator is decided by the
estimate only when no threshold lies within the engine's margin of it; otherwise, and for every breach, the
reference functions compute that input's indicators. Breaches are built by the engine's own `_breach`, so a
replay gives the same report, to the bit, as one input at a time. Windows where two sums of the same returns
could differ by more than the margin (a spread tiny against the mean) are left to the reference functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from services.scoring.apply import _NO_CONTROLS, _NO_RULE_STATE, _compiled, _score, _weights_for, indicator_snapshot
from services.scoring.config import ScoringConfig
from services.scoring.evidence import _breach
from services.scoring.indicators.composite import points_per_component
from services.scoring.indicators.rolling import ReturnWindows
from services.scoring.indicators.volatility import (
    CHANGE_DAYS,
    DAY,
    PERIODS_PER_YEAR,
    change_tolerance,
    price_indicators,
    prices_needed,
)
from services.scoring.rules import RuleState, evaluate_rule
from services.scoring.state import MaterialState, PriceSeries, _evolve
from shared.events import BreachRaised, IndicatorSnapshot, PriceObserved

# mean^2 / variance beyond which a window is left to the reference functions: below it the two-pass sums of
# numpy and of `sample_sd` agree far within ESTIMATE_RTOL, and the jump z-score's mean is exact enough.
_KAPPA_MAX = 1e6
_GAPS = 20  # the gaps `infer_frequency` looks at


@dataclass
class HistoryOutcome:
    """The final state, and the breach transitions by input index (in input order, each input's in rule order)."""

    state: MaterialState
    breaches: dict[int, list[BreachRaised]]
    history: _History

    def snapshot_after(self, k: int) -> IndicatorSnapshot:
        """The indicator snapshot right after input k, as `indicator_snapshot` gives it for the engine's state."""
        return indicator_snapshot(self.history.state_after(k), self.history.cfg)


def apply_price_history(
    events: Sequence[PriceObserved], event_ids: Sequence[str], config: ScoringConfig
) -> HistoryOutcome | None:
    """Apply a material's prices, from no state, as `apply_event_in_place` would one by one; None if not eligible.

    Eligible: one material, one source and series, strictly increasing event times, distinct ids, and a history
    long enough for the indicators' windows.
    """
    history = _History.of(None, events, event_ids, config)
    return None if history is None else history.run()


def apply_price_run(
    state: MaterialState | None, events: Sequence[PriceObserved], event_ids: Sequence[str], config: ScoringConfig
) -> HistoryOutcome | None:
    """`apply_price_history` continuing `state` (changed in place or not at all); None if not eligible.

    Eligible besides: the state holds this material's one series and nothing else (no other kind of input, no
    rule that is no longer configured), every price is newer than the watermark and no id was seen before.
    """
    if state is not None and not _continues(state, events, event_ids, config):
        return None
    history = _History.of(state, events, event_ids, config)
    return None if history is None else history.run()


def _continues(
    state: MaterialState, events: Sequence[PriceObserved], event_ids: Sequence[str], config: ScoringConfig
) -> bool:
    """Whether a run of prices can continue `state` at once (the checks `_History.of` does not make itself)."""
    if not events or state.material != events[0].material:
        return False
    if state.quotes or state.flows or state.controls or state.news_keys or state.stocks or state.news_signals:
        return False
    if not state.indicators.keys() <= {"price", "controls"} or len(state.series) > 1:
        return False
    key = f"{events[0].source}|{events[0].series}"
    if state.series and (key not in state.series or state.active_series != key):
        return False
    if state.watermark is not None and events[0].observed_at.timestamp() <= state.watermark:
        return False
    names, _ = _compiled(config.rules_for(state.material))
    if not names.issuperset(state.rules):
        return False  # a removed rule resolves its breach: the engine does that input by input
    return state.seen_ids == [] or set(state.seen_ids).isdisjoint(event_ids)


class _History:
    """One material's eligible price history as arrays, and the rule runs over it."""

    def __init__(
        self,
        prior: MaterialState | None,
        events: Sequence[PriceObserved],
        config: ScoringConfig,
        times: list[float],
        prices: list[float],
        returns: list[float],
        ids: list[str],
        levels: list[str],
        urls: list[str],
    ) -> None:
        first = events[0]
        self.material, self.source, self.series = first.material, first.source, first.series
        self.cfg = config
        self.t, self.p, self.r, self.ids, self.cls, self.urls = times, prices, returns, ids, levels, urls
        # Inputs 0 .. n0-1 are the prices the prior state holds, the run's own follow.
        self.n0 = len(times) - len(events)
        self.prior_rules = prior.rules if prior is not None else {}
        self.prior_seen = prior.seen_ids if prior is not None else []
        key = f"{self.source}|{self.series}"
        self.key = key
        self.base = MaterialState(
            material=self.material, series={key: PriceSeries(self.source, self.series)}, active_series=key
        )
        p = config.price
        self.need = prices_needed(
            volatility_window=p.volatility_window,
            ewma_window=p.ewma_window,
            long_window=p.long_window,
            jump_window=p.jump_window,
        )
        self.limit = config.history.price_points
        self.exact: dict[int, dict[str, float | None]] = {}

    @classmethod
    def of(
        cls,
        prior: MaterialState | None,
        events: Sequence[PriceObserved],
        event_ids: Sequence[str],
        config: ScoringConfig,
    ) -> _History | None:
        if not events or len(events) != len(event_ids) or len(set(event_ids)) != len(event_ids):
            return None
        p = config.price
        if min(p.volatility_window, p.ewma_window, p.short_window, p.long_window, p.jump_window) < 1:
            return None
        need = prices_needed(
            volatility_window=p.volatility_window,
            ewma_window=p.ewma_window,
            long_window=p.long_window,
            jump_window=p.jump_window,
        )
        if config.history.price_points < need or need <= _GAPS + 1:
            return None
        first = events[0]
        material, source, series = first.material, first.source, first.series
        held = next(iter(prior.series.values())) if prior is not None and prior.series else None
        times: list[float] = list(held.t) if held is not None else []
        prices: list[float] = list(held.p) if held is not None else []
        ids: list[str] = [*(held.ids if held is not None else ()), *event_ids]
        levels: list[str] = list(held.cls) if held is not None else []
        urls: list[str] = list(held.urls) if held is not None else []
        held_returns = list(held.r) if held is not None else []
        last = times[-1] if times else -math.inf
        for e in events:
            if type(e) is not PriceObserved or e.material != material or e.source != source or e.series != series:
                return None
            t = e.observed_at.timestamp()
            if t <= last:
                return None  # a late insert or a duplicate time: the engine's own path decides those
            last = t
            times.append(t)
            prices.append(e.price)
            levels.append(e.classification.value)
            urls.append(e.url)
        # As PriceSeries.add computes them: r[i] = log(p[i] / p[i-1]); r[0] has no predecessor. The held prices
        # keep the returns they have (the first one's may be from a price since dropped, and is never read).
        n0 = len(held_returns)
        new = [math.log(b / a) for a, b in zip(prices[max(0, n0 - 1) :], prices[max(1, n0) :], strict=False)]
        if not all(math.isfinite(x) for x in new):
            return None
        returns = [*held_returns, *new] if n0 else [math.nan, *new]
        return cls(prior, events, config, times, prices, returns, ids, levels, urls)

    # --- indicators ------------------------------------------------------------------------------------------

    def exact_group(self, k: int) -> dict[str, float | None]:
        """The reference price group after input k (what the engine's settled state holds)."""
        hit = self.exact.get(k)
        if hit is None:
            p = self.cfg.price
            s0 = max(0, k + 1 - self.limit)
            hit = self.exact[k] = price_indicators(
                self.t[s0 : k + 1],
                self.p[s0 : k + 1],
                volatility_window=p.volatility_window,
                ewma_lambda=p.ewma_lambda,
                ewma_window=p.ewma_window,
                short_window=p.short_window,
                long_window=p.long_window,
                jump_window=p.jump_window,
                jump_min_returns=p.jump_min_returns,
                jump_sd_floor=p.jump_sd_floor,
                returns=self.r[max(s0 + 1, k + 2 - self.need) : k + 1],
            )
        return hit

    def estimates(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every price indicator of every input (NaN: none), and where the estimates can be trusted."""
        with np.errstate(divide="ignore", invalid="ignore"):  # windows without spread are not trusted anyway
            return self._estimates()

    def _estimates(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        p, n, need = self.cfg.price, len(self.t), self.need
        t, price, r = np.array(self.t), np.array(self.p), np.array(self.r)
        out = {name: np.full(n, np.nan) for name in _PRICE_GROUP}
        ok = np.ones(n, dtype=bool)
        out["price"] = price
        for days, name in zip(
            CHANGE_DAYS, ("price_change_1d_pct", "price_change_7d_pct", "price_change_30d_pct"), strict=True
        ):
            out[name] = self._changes(t, price, float(days))
        # The first inputs, whose windows are not yet full, come from the reference functions (the held prices
        # are the prior state's: nothing is decided on them).
        early = min(n, need)
        for k in range(self.n0, early):
            for name, value in self.exact_group(k).items():
                if name in _ESTIMATED_HERE:
                    out[name][k] = math.nan if value is None else value
        if n <= need:
            return out, ok
        # Inputs start .. n-1: every window full, `need - 1` returns given; the held prices are not computed.
        start = max(need, self.n0)
        rows = n - start
        rets = r[1:]  # rets[j] = r[j + 1]; the window of w returns ending at input k starts at rets[k - w]
        gaps = np.diff(t)
        median_gap = np.median(sliding_window_view(gaps, _GAPS)[start - _GAPS :], axis=1)
        ppy = np.where(
            median_gap <= 4 * DAY,
            PERIODS_PER_YEAR["daily"],
            np.where(median_gap <= 12 * DAY, PERIODS_PER_YEAR["weekly"], PERIODS_PER_YEAR["monthly"]),
        )
        root = np.sqrt(ppy)
        out["price_periods_per_year"][start:] = ppy
        out["price_periods_per_year"][self.n0 : early] = [
            self.exact_group(k)["price_periods_per_year"] for k in range(self.n0, early)
        ]

        def sd(w: int, lag: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            windows = sliding_window_view(rets, w)[start - w - lag : start - w - lag + rows]
            mean = windows.mean(axis=1)
            dev = windows - mean[:, None]
            ss = np.einsum("ij,ij->i", dev, dev)
            trusted = (ss > 0) & (mean * mean * (w - 1) <= _KAPPA_MAX * ss)
            return np.sqrt(ss / (w - 1)), mean, trusted

        vol, _, vol_ok = sd(p.volatility_window)
        out["price_volatility"][start:] = vol * root
        lam, ew = p.ewma_lambda, p.ewma_window
        # sigma2 = lam^(m-1) r_0^2 + (1 - lam) sum_{j>0} lam^(m-1-j) r_j^2 (ewma_volatility written out)
        weights = (1.0 - lam) * lam ** np.arange(ew - 1, -1, -1, dtype=float)
        weights[0] = lam ** (ew - 1)
        ewma_windows = sliding_window_view(rets, ew)[start - ew : start - ew + rows]
        out["price_volatility_ewma"][start:] = (
            np.sqrt(np.einsum("ij,ij,j->i", ewma_windows, ewma_windows, weights)) * root
        )
        trusted = vol_ok
        if p.short_window >= 2:
            short, _, short_ok = sd(p.short_window)
            long, _, long_ok = sd(p.long_window)
            out["price_volatility_ratio"][start:] = short / long
            trusted = trusted & short_ok & long_ok
        m = p.jump_window
        if need - 1 >= p.jump_min_returns + 1:
            jump_sd, jump_mean, jump_ok = sd(m, lag=1)
            jump_sd = np.maximum(jump_sd, p.jump_sd_floor / root)
            out["price_jump_z"][start:] = (rets[start - 1 : start - 1 + rows] - jump_mean) / jump_sd
            trusted = trusted & jump_ok
        ok[start:] = trusted
        return out, ok

    def _changes(self, t: np.ndarray, price: np.ndarray, days: float) -> np.ndarray:
        """`price_changes` of every run input for one horizon, on the series as the engine keeps it (bounded);
        NaN for the held prices before the run."""
        n, n0 = len(t), self.n0
        k = np.arange(n0, n)
        target = t[n0:] - days * DAY
        start = np.maximum(0, k + 1 - self.limit)  # the oldest price the engine still holds after input k
        i = np.maximum(np.searchsorted(t, target, side="left"), start)
        before = np.where(i > start, np.abs(t[np.maximum(i - 1, 0)] - target), np.inf)
        after = np.where(i < k, np.abs(t[np.minimum(i, n - 1)] - target), np.inf)
        best = np.where(after < before, i, np.where(i > start, i - 1, -1))
        dist = np.minimum(before, after)
        change = (price[n0:] / price[np.maximum(best, 0)] - 1.0) * 100.0
        out = np.full(n, np.nan)
        out[n0:] = np.where((best >= 0) & (dist <= change_tolerance(days)) & (k >= 1), change, np.nan)
        return out

    # --- rules -------------------------------------------------------------------------------------------------

    def state_at(self, k: int, evidence: int) -> MaterialState:
        """The material's state after input k, as far as a breach reads it (its latest prices)."""
        lo = max(0, k + 1 - min(self.limit, evidence))
        series = _evolve(
            self.base.series[self.key],
            t=self.t[lo : k + 1],
            p=self.p[lo : k + 1],
            ids=self.ids[lo : k + 1],
            cls=self.cls[lo : k + 1],
            urls=self.urls[lo : k + 1],
        )
        return _evolve(self.base, watermark=self.t[k], series={self.key: series})

    def state_after(self, k: int) -> MaterialState:
        """The state after run input k (index in the run) as `indicator_snapshot` reads it: its indicators, its
        watermark and the classification of each price it holds (not the prices themselves)."""
        k += self.n0
        series = _evolve(self.base.series[self.key], cls=self.cls[max(0, k + 1 - self.limit) : k + 1])
        return _evolve(
            self.base,
            watermark=self.t[k],
            series={self.key: series},
            indicators={"price": self.exact_group(k), "controls": _NO_CONTROLS},
        )

    def run(self) -> HistoryOutcome:
        cfg, n, n0 = self.cfg, len(self.t), self.n0
        values, ok = self.estimates()
        present = {name: ~np.isnan(v) for name, v in values.items()}
        score = self._risk_scores(values, present)
        values["risk_score"], present["risk_score"] = score, ~np.isnan(score)
        _, table = _compiled(cfg.rules_for(self.material))
        finals: dict[str, RuleState] = {}
        transitions: dict[int, list[tuple[int, BreachRaised]]] = {}  # by input index of the arrays
        for order, (rule, name, indicator, sign, first, near_first, near_all) in enumerate(table):
            if indicator in values:
                v, has = values[indicator], present[indicator]
            elif indicator in _NO_CONTROLS and _NO_CONTROLS[indicator] is not None:
                v, has = np.full(n, float(_NO_CONTROLS[indicator])), np.ones(n, dtype=bool)  # type: ignore[arg-type]
            else:  # no input of this material gives the indicator: the rule never has a value
                if name in self.prior_rules:
                    finals[name] = self.prior_rules[name]
                continue
            approximate = near_first is not None
            # Inputs where a rule with no state may start one: at or beyond the first threshold, or near it.
            starts = has & (sign * v >= sign * first)
            # Where the estimate cannot decide: untrusted, or near the first / any threshold.
            undecided_first = undecided_any = ok
            if approximate:
                undecided_first = ~ok | _within(v, (near_first,))
                undecided_any = ~ok | _within(v, near_all)
                starts |= undecided_first
            candidates = (np.flatnonzero(starts[n0:]) + n0).tolist()
            # Read at k - n0: the run's inputs only (the held prices are never read).
            vs, hs = v[n0:].tolist(), has[n0:].tolist()
            first_l, any_l = undecided_first[n0:].tolist(), undecided_any[n0:].tolist()
            state: RuleState | None = self.prior_rules.get(name)
            if state is not None:
                candidates.insert(0, n0)  # a rule pending or open before the run goes on from its first input
            k = n0 - 1
            for c in candidates:
                if c <= k:
                    continue
                k = c
                while k < n:
                    j = k - n0
                    value: float | None = vs[j] if hs[j] else None
                    if approximate and (any_l[j] if state is not None else first_l[j]):
                        value = self.exact_value(k, indicator)
                    prior = state if state is not None else _NO_RULE_STATE
                    nxt, tr = evaluate_rule(rule, prior, value, self.t[k])
                    if tr is not None and value is not None:
                        if approximate:
                            value = self.exact_value(k, indicator)
                            assert value is not None  # the reference has a value wherever the estimate has
                        if tr.firing:
                            nxt = replace(nxt, indicator=indicator, value=value)
                        transitions.setdefault(k, []).append(
                            (
                                order,
                                _breach(self.state_at(k, cfg.history.evidence), rule, name, indicator, tr, value, cfg),
                            )
                        )
                    state = None if _is_nothing(nxt) else nxt
                    if state is None:
                        break
                    k += 1
                if k >= n:
                    break
            if state is not None:
                finals[name] = state
        # Reported by index in the run.
        breaches = {k - n0: [b for _, b in sorted(transitions[k], key=lambda x: x[0])] for k in sorted(transitions)}
        return HistoryOutcome(self.final_state(finals), breaches, self)

    def exact_value(self, k: int, indicator: str) -> float | None:
        group = self.exact_group(k)
        if indicator == "risk_score":
            ind = {**group, **_NO_CONTROLS}
            return _score(ind, self.material, self.cfg)[0]
        return group.get(indicator)

    def _risk_scores(self, values: dict[str, np.ndarray], present: dict[str, np.ndarray]) -> np.ndarray:
        """The composite score of every input from the (estimated) indicators, as `_score` computes it."""
        score = np.full(len(self.t), np.nan)
        vol, change = present["price_volatility"], present["price_change_30d_pct"]
        for has_vol in (False, True):
            for has_change in (False, True):
                rows = np.flatnonzero((vol == has_vol) & (change == has_change))
                if len(rows):
                    score[rows] = self._score_rows(values, rows, has_vol, has_change)
        return score

    def _score_rows(
        self, values: dict[str, np.ndarray], rows: np.ndarray, has_vol: bool, has_change: bool
    ) -> np.ndarray:
        """`composite_score` of some inputs that have the same components (normalise_components written out)."""
        n = self.cfg.normalisation
        components: dict[str, np.ndarray] = {}
        if has_vol:
            components["volatility"] = np.clip(values["price_volatility"][rows] / n.volatility_ref, 0.0, 1.0)
        if has_change:
            components["price_trend"] = np.clip(values["price_change_30d_pct"][rows] / n.price_trend_ref_pct, 0.0, 1.0)
        severity = _NO_CONTROLS["export_control_severity"]
        if severity is not None:
            components["export_controls"] = np.full(len(rows), min(1.0, max(0.0, severity)))
        weights, _ = _weights_for(self.cfg, self.material)
        points = points_per_component(tuple(components), weights, n.min_coverage)
        total = np.zeros(len(rows)) if points else np.full(len(rows), np.nan)
        for name, f in points.items():
            total += f * components[name]
        return total

    def final_state(self, rules: dict[str, RuleState]) -> MaterialState:
        """The state `apply_event_in_place` leaves after the last input (its price group settled)."""
        n = len(self.t)
        s0 = max(0, n - self.limit)
        series = PriceSeries(
            self.source,
            self.series,
            self.t[s0:],
            self.p[s0:],
            self.ids[s0:],
            self.cls[s0:],
            self.urls[s0:],
            self.r[s0:],
            ReturnWindows(deferred=True),
        )
        return MaterialState(
            material=self.material,
            watermark=self.t[-1],
            series={self.key: series},
            active_series=self.key,
            rules=rules,
            indicators={"price": self.exact_group(n - 1), "controls": _NO_CONTROLS},
            seen_ids=[*self.prior_seen, *self.ids[self.n0 :]][-self.cfg.history.seen_ids :],
        )


def _within(v: np.ndarray, bands: Sequence[tuple[float, float]]) -> np.ndarray:
    """Where v lies in any of the bands (NaN in none)."""
    out = np.zeros(len(v), dtype=bool)
    for lo, hi in bands:
        out |= (v >= lo) & (v <= hi)
    return out


def _is_nothing(state: RuleState) -> bool:
    """state == RuleState(), without the dataclass comparison (this runs once per input a rule is open for)."""
    return (
        state.pending_since is None
        and state.open_severity is None
        and state.open_since is None
        and state.indicator is None
        and state.value is None
    )


_PRICE_GROUP = (
    "price",
    "price_change_1d_pct",
    "price_change_7d_pct",
    "price_change_30d_pct",
    "price_volatility",
    "price_volatility_ewma",
    "price_volatility_ratio",
    "price_jump_z",
    "price_periods_per_year",
)
_ESTIMATED_HERE = ("price_volatility", "price_volatility_ewma", "price_volatility_ratio", "price_jump_z")
