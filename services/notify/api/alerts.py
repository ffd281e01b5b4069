"""Alerts: what is firing for the organisation, and acknowledging it (by API key or by a signed email link)."""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from services.notify.ack_links import AckClaim, verify_ack_token
from services.notify.api.deps import db_session, notify_settings
from services.notify.api.feedback import FeedbackOut
from services.notify.auth import Principal, organisation_of, tenant_member
from services.notify.settings import NotifySettings
from services.notify.store import alerts, feedback
from services.notify.store.errors import NotFound
from services.notify.store.models import Alert, Organisation, utcnow
from services.notify.store.muting import Muting, mutings
from shared.events import Classification, MaterialId

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["alerts"])


class MutedBy(BaseModel):
    """What keeps a firing alert from being sent: a silence (its id) or the alert that inhibits it."""

    kind: Literal["silence", "alert"]
    id: str
    fingerprint: str | None = None
    reason: str


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    fingerprint: str
    material: str
    rule: str
    severity: Literal["warning", "critical"]
    status: Literal["firing", "resolved"]
    classification: str
    summary: str
    starts_at: datetime
    ends_at: datetime | None
    updated_at: datetime
    via: list[Any]
    acknowledged: bool = False
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    # firing and sent, silenced or inhibited (muted: kept, not sent), or resolved
    state: Literal["firing", "silenced", "inhibited", "resolved"] = "firing"
    muted_by: MutedBy | None = None

    @classmethod
    def of(cls, row: Any, muting: Muting | None = None) -> AlertOut:
        out = cls.model_validate(row)
        return out.model_copy(
            update={
                "acknowledged": row.acknowledged_at is not None,
                "state": muting.state if muting else row.status,
                "muted_by": MutedBy(
                    kind="silence" if muting.state == "silenced" else "alert",
                    id=muting.id,
                    fingerprint=muting.fingerprint,
                    reason=muting.reason,
                )
                if muting
                else None,
            }
        )


def _muted(session: Session, principal: Principal, rows: list[Any], settings: NotifySettings) -> dict[str, Muting]:
    return mutings(
        session, organisation_of(principal), Classification(principal.clearance), rows, utcnow(), settings.inhibit_rules
    )


class AlertDetail(AlertOut):
    breach: dict[str, Any]
    feedback: list[FeedbackOut] = []


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(
    status_: Literal["firing", "resolved"] | None = Query(default=None, alias="status"),
    material: MaterialId | None = None,
    severity: Literal["warning", "critical"] | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
    principal: Principal = Depends(tenant_member),
    session: Session = Depends(db_session),
    settings: NotifySettings = Depends(notify_settings),
) -> list[AlertOut]:
    """The organisation's alerts (`?status=firing`: what is burning now), with acknowledgement state and, for a
    muted one, `state` silenced or inhibited and `muted_by`."""
    rows = alerts.list_alerts(
        session,
        organisation_of(principal),
        principal.clearance,
        status=status_,
        material=material,
        severity=severity,
        limit=limit,
    )
    muted = _muted(session, principal, rows, settings)
    return [AlertOut.of(r, muted.get(r.id)) for r in rows]


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(
    alert_id: str,
    principal: Principal = Depends(tenant_member),
    session: Session = Depends(db_session),
    settings: NotifySettings = Depends(notify_settings),
) -> AlertDetail:
    """One alert with the breach that last changed it and the feedback given on it."""
    row = alerts.get_alert(session, organisation_of(principal), principal.clearance, alert_id)
    muted = _muted(session, principal, [row], settings)
    given = [FeedbackOut.model_validate(f) for f in feedback.list_feedback(session, row.id)]
    return AlertDetail(**AlertOut.of(row, muted.get(row.id)).model_dump(), breach=row.breach, feedback=given)


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
def acknowledge(
    alert_id: str, principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> AlertOut:
    """Acknowledge an alert: someone is on it. The first acknowledgement stands."""
    row = alerts.acknowledge_alert(
        session, organisation_of(principal), principal.clearance, alert_id, by=principal.actor
    )
    session.commit()
    log.info(
        "alert acknowledged",
        extra={"organisation_id": row.organisation_id, "alert_id": row.id, "by": principal.actor, "via": "api"},
    )
    return AlertOut.of(row)


_CONFIRM_PAGE = """<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>mews</title></head>
<body><h1>Alert bevestigen? / Acknowledge alert?</h1><p>{material} &middot; {rule} &middot; {severity}</p>
<p>{summary}</p><form method="post"><button type="submit">Bevestigen / Acknowledge</button></form></body></html>"""

_ACK_PAGE = """<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>mews</title></head>
<body><h1>Alert bevestigd / Alert acknowledged</h1><p>{material} &middot; {rule} &middot; {severity}</p>
<p>{summary}</p><p>{by} &middot; {at}</p></body></html>"""


def _claimed_alert(token: str, session: Session, settings: NotifySettings) -> tuple[Organisation, Alert]:
    """The organisation and alert a signed link names; 403 when the link is invalid, expired or points at nothing."""
    claim = verify_ack_token(settings.link_signing_key.get_secret_value(), token)
    if not isinstance(claim, AckClaim):
        log.info("acknowledgement link refused", extra={"reason": claim})
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"link refused: {claim}")
    organisation = session.get(Organisation, claim.organisation_id)
    if organisation is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "link refused: organisation no longer exists")
    try:
        return organisation, alerts.get_alert(session, organisation.id, organisation.clearance, claim.alert_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "link refused: alert no longer exists") from exc


def _page(template: str, row: Alert) -> HTMLResponse:
    return HTMLResponse(
        template.format(
            material=html.escape(row.material),
            rule=html.escape(row.rule),
            severity=html.escape(row.severity),
            summary=html.escape(row.summary),
            by=html.escape(row.acknowledged_by or ""),
            at=html.escape(row.acknowledged_at.isoformat() if row.acknowledged_at else ""),
        )
    )


# Mail scanners fetch every link in a message, so following the link only asks; the button acknowledges.
_LINK_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "The link is malformed, forged, expired or names nothing"}
}


@router.get("/ack/{token}", response_class=HTMLResponse, include_in_schema=True, responses=_LINK_REFUSED)
def confirm_by_link(
    token: str, session: Session = Depends(db_session), settings: NotifySettings = Depends(notify_settings)
) -> HTMLResponse:
    """Show the alert a signed email link names with a button to acknowledge it; a bad link answers 403."""
    return _page(_CONFIRM_PAGE, _claimed_alert(token, session, settings)[1])


@router.post("/ack/{token}", response_class=HTMLResponse, include_in_schema=True, responses=_LINK_REFUSED)
def acknowledge_by_link(
    token: str, session: Session = Depends(db_session), settings: NotifySettings = Depends(notify_settings)
) -> HTMLResponse:
    """Acknowledge the alert a signed email link names; an invalid or expired link is refused with 403."""
    organisation, claimed = _claimed_alert(token, session, settings)
    row = alerts.acknowledge_alert(session, organisation.id, organisation.clearance, claimed.id, by="email-link")
    session.commit()
    log.info(
        "alert acknowledged",
        extra={"organisation_id": row.organisation_id, "alert_id": row.id, "by": row.acknowledged_by, "via": "link"},
    )
    return _page(_ACK_PAGE, row)
