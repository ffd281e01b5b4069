"""The read API of scoring: materials, their indicators and open breaches, and the risk ranking.

It answers from the read view (`view.py`), never from the worker's table, so every replica shows every
material. Callers present a read key (`Authorization: Bearer <key>`); what they see is cut to their clearance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.scoring.settings import ScoringSettings
from services.scoring.view import MaterialsView, visible, visible_controls
from shared.api import secure_api
from shared.events import BreachRaised, Classification, IndicatorSnapshot
from shared.metrics import ReadinessCheck, mount_observability
from shared.problems import answers
from shared.service_keys import find_key
from shared.throttle import auth_throttle

SERVICE = "scoring"
_bearer = HTTPBearer(auto_error=False, description="A read key; its sha256 digest is configured on the server")


class Reader(BaseModel):
    """Who is asking, as far as the API needs to know: their clearance."""

    clearance: Classification


class MaterialSummary(BaseModel):
    """A material with its latest risk score and the open breaches the caller may see."""

    material: str
    as_of: datetime
    risk_score: float | None
    open_breaches: int
    highest_severity: str | None = None
    withheld: bool = Field(default=False, description="Indicators rest on inputs above the caller's clearance")


class MaterialDetail(BaseModel):
    """Everything the API knows of a material, cut to the caller's clearance."""

    material: str
    as_of: datetime
    risk_score: float | None
    components: dict[str, float]
    indicators: dict[str, float | None]
    export_controls: list[dict[str, Any]]
    open_breaches: list[BreachRaised]
    withheld: bool = Field(default=False, description="Indicators rest on inputs above the caller's clearance")


class RiskEntry(BaseModel):
    """One row of the risk ranking."""

    rank: int = Field(ge=1)
    material: str
    risk_score: float | None
    components: dict[str, float]
    as_of: datetime
    withheld: bool = False


class HistoryPoint(BaseModel):
    """One past snapshot's figures."""

    as_of: datetime
    risk_score: float | None
    indicators: dict[str, float | None]


class MaterialHistory(BaseModel):
    """A material's recent snapshots the caller may see, oldest first (the view keeps the last 60 it read)."""

    material: str
    points: list[HistoryPoint]


class Figures(BaseModel):
    """The numbers of a snapshot a caller may see: all of them, or none when its inputs are above them."""

    risk_score: float | None
    components: dict[str, float]
    indicators: dict[str, float | None]
    withheld: bool


def figures_for(snap: IndicatorSnapshot, clearance: Classification) -> Figures:
    """A snapshot's figures cut to a clearance: a score computed from restricted inputs reveals them."""
    if visible(snap.classification, clearance):
        return Figures(
            risk_score=snap.risk_score, components=snap.components, indicators=snap.indicators, withheld=False
        )
    return Figures(risk_score=None, components={}, indicators={}, withheld=True)


@answers(401, 429)
def reader(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Reader:
    """The caller behind a bearer read key; 401 without a valid one (429 after too many failures)."""
    presented = credentials.credentials if credentials is not None else None
    key = find_key(presented, request.app.state.read_keys)
    if key is None:
        auth_throttle(request).refuse(request, presented, "a valid read key is required")
    return Reader(clearance=key.clearance)


Caller = Annotated[Reader, Depends(reader)]


def create_api(
    settings: ScoringSettings, view: MaterialsView, checks: dict[str, ReadinessCheck] | None = None
) -> FastAPI:
    """The FastAPI app: /v1 routes, /docs, /metrics, /healthz and /readyz."""
    api = FastAPI(
        title="mews scoring",
        version="1",
        description="Risk scores, indicators and open breaches per critical raw material.",
    )
    api.state.read_keys = settings.read_keys
    mount_observability(api, SERVICE, checks or {}, settings=settings)
    secure_api(api, SERVICE, settings)

    @api.get("/v1/materials", response_model=list[MaterialSummary], tags=["materials"])
    def list_materials(caller: Caller) -> list[MaterialSummary]:
        """Every material with its latest risk score and its open breaches."""
        out = []
        for material in sorted(view.snapshots):
            snap = view.snapshots[material]
            open_ = view.open_breaches(material, caller.clearance)
            severities = {b.severity.value for b in open_}
            highest = "critical" if "critical" in severities else ("warning" if severities else None)
            shown = figures_for(snap, caller.clearance)
            out.append(
                MaterialSummary(
                    material=material,
                    as_of=snap.as_of,
                    risk_score=shown.risk_score,
                    open_breaches=len(open_),
                    highest_severity=highest,
                    withheld=shown.withheld,
                )
            )
        return out

    @api.get(
        "/v1/materials/{material}",
        response_model=MaterialDetail,
        tags=["materials"],
        responses={404: {"description": "No snapshot of this material"}},
    )
    def get_material(material: str, caller: Caller) -> MaterialDetail:
        """A material's indicators, open breaches and export controls in force."""
        snap = view.snapshot(material)
        if snap is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown material")
        shown = figures_for(snap, caller.clearance)
        return MaterialDetail(
            material=snap.material,
            as_of=snap.as_of,
            risk_score=shown.risk_score,
            components=shown.components,
            indicators=shown.indicators,
            withheld=shown.withheld,
            export_controls=visible_controls(snap.export_controls, caller.clearance),
            open_breaches=view.open_breaches(material, caller.clearance),
        )

    @api.get("/v1/risk", response_model=list[RiskEntry], tags=["risk"])
    def risk_ranking(caller: Caller) -> list[RiskEntry]:
        """Materials ranked by risk score, highest first, with the weighted components of each score."""
        rows = [(snap, figures_for(snap, caller.clearance)) for snap in view.snapshots.values()]
        rows.sort(key=lambda r: (r[1].risk_score is None, -(r[1].risk_score or 0.0), r[0].material))
        return [
            RiskEntry(
                rank=i,
                material=snap.material,
                risk_score=shown.risk_score,
                components=shown.components,
                as_of=snap.as_of,
                withheld=shown.withheld,
            )
            for i, (snap, shown) in enumerate(rows, start=1)
        ]

    @api.get("/v1/history", response_model=list[MaterialHistory], tags=["risk"])
    def history(caller: Caller, material: Annotated[list[str] | None, Query()] = None) -> list[MaterialHistory]:
        """Each material's recent risk scores and indicators, for sparklines; `material` (repeatable) narrows it.

        A snapshot computed from inputs above the caller's clearance is left out, as its figures are withheld."""
        wanted = sorted(set(material) if material else view.history)
        return [
            MaterialHistory(
                material=m,
                points=[
                    HistoryPoint(as_of=snap.as_of, risk_score=snap.risk_score, indicators=snap.indicators)
                    for snap in view.recent(m)
                    if visible(snap.classification, caller.clearance)
                ],
            )
            for m in wanted
            if m in view.history
        ]

    return api
