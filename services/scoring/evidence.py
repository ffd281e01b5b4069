"""The evidence behind a breach: the recent inputs that drove its indicator; and the breach event itself."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scoring.config import ScoringConfig, parameter_of
from services.scoring.indicators.controls import controls_in_force
from services.scoring.indicators.news import news_evidence
from services.scoring.rules import Rule, Transition, fingerprint
from services.scoring.state import MaterialState, _as_of_date, _dt, trade_window
from services.scoring.summary import summarise
from shared.events import BreachRaised, BreachStatus, Classification, Evidence, Severity


def _group_of(indicator: str) -> str:
    if indicator.startswith("price"):
        return "price"
    if indicator.startswith("leadtime"):
        return "leadtime"
    if indicator.startswith("export_control"):
        return "controls"
    if indicator == "risk_score":
        return "all"
    if indicator.startswith("stock"):
        return "stock"
    if indicator.startswith("news_"):
        return "news"
    return "trade"


def evidence_for(state: MaterialState, indicator: str, limit: int) -> list[Evidence]:
    """The recent inputs that drove an indicator, newest first, at most `limit` per kind of input."""
    group = _group_of(indicator)
    out: list[Evidence] = []
    if group in ("price", "all"):
        s = state.series.get(state.active_series or "")
        if s is not None:
            for i in range(len(s.t) - 1, max(-1, len(s.t) - 1 - limit), -1):
                out.append(
                    Evidence(
                        id=s.ids[i],
                        source=s.source,
                        kind="price",
                        time=_dt(s.t[i]),
                        value=s.p[i],
                        url=s.urls[i],
                        classification=Classification(s.cls[i]),
                    )
                )
    if group in ("leadtime", "all"):
        for q in reversed(state.quotes[-limit:]):
            out.append(
                Evidence(
                    id=q.id,
                    source=q.source,
                    kind="leadtime",
                    time=_dt(q.t),
                    value=q.days,
                    classification=Classification(q.cls),
                )
            )
    if group in ("trade", "all"):
        periods = trade_window(state.flows, 12)
        flows = sorted(
            (f for p in periods for f in state.flows[p] if f.flow == "import"),
            key=lambda f: (-(f.value_eur or f.quantity_kg or 0.0), f.t, f.partner),
        )
        for f in flows[:limit]:
            out.append(
                Evidence(
                    id=f.id,
                    source=f.source,
                    kind="trade",
                    time=_dt(f.t),
                    value=f.value_eur if f.value_eur is not None else f.quantity_kg,
                    classification=Classification(f.cls),
                )
            )
    if group == "stock":
        for st in reversed(state.stocks[-limit:]):
            out.append(
                Evidence(
                    id=st.id,
                    source=st.source,
                    kind="stock",
                    time=_dt(st.t),
                    value=st.tonnes,
                    classification=Classification(st.cls),
                )
            )
    if group == "news":
        for n in news_evidence(state.news_signals, indicator, state.watermark or 0.0, limit):
            out.append(
                Evidence(
                    id=n.id,
                    source=n.source,
                    kind="news",
                    time=_dt(n.t),
                    value=n.describe(),
                    url=n.url,
                    classification=Classification(n.cls),
                )
            )
    if group in ("controls", "all"):
        for c in controls_in_force(state.controls, _as_of_date(state))[:limit]:
            out.append(
                Evidence(
                    id=c.event_id,
                    source=c.source,
                    kind="news",
                    time=datetime.fromisoformat(c.since).replace(tzinfo=UTC),
                    value=f"{c.country} {c.measure}",
                    url=c.url,
                    classification=Classification(c.classification),
                )
            )
    return out


def _breach(
    state: MaterialState,
    rule: Rule | None,
    rule_name: str,
    indicator: str,
    tr: Transition,
    value: float,
    cfg: ScoringConfig,
    input_at: float | None = None,
) -> BreachRaised:
    evidence = evidence_for(state, indicator, cfg.history.evidence)
    return BreachRaised(
        fingerprint=fingerprint(state.material, rule_name),
        material=state.material,
        rule=rule_name,
        indicator=indicator,
        severity=Severity(tr.severity),
        status=BreachStatus.FIRING if tr.firing else BreachStatus.RESOLVED,
        value=value,
        warning_threshold=rule.warning if rule else None,
        critical_threshold=rule.critical if rule else None,
        clear_threshold=rule.clear if rule else None,
        threshold=tr.threshold,
        starts_at=_dt(tr.starts_at),
        ends_at=_dt(tr.ends_at) if tr.ends_at is not None else None,
        observed_at=_dt(state.watermark or tr.starts_at),
        summary=summarise(state.material, rule, indicator, tr, value, rule_name, input_at),
        evidence=evidence,
        classification=Classification.most_restricted([e.classification for e in evidence]),
        parameter=rule.parameter if rule else parameter_of(indicator),
    )
