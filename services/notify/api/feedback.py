"""Feedback on alerts: members say an alert was irrelevant, a duplicate, false, about the wrong material or
useful; admins may mute its (material, rule) at once; government operators export it as classifier cases."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import StreamingResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.notify.api.deps import db_session
from services.notify.auth import Principal, organisation_of, tenant_member
from services.notify.store import feedback
from services.notify.store.models import FEEDBACK_REASONS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["feedback"])

# No tenant label: what organisations say is counted, not who said it.
FEEDBACK = Counter(
    "mews_notify_alert_feedback_total",
    "Feedback on alerts by reason, rule and material",
    ["reason", "rule", "material"],
)

Reason = Literal["irrelevant", "duplicate", "false_data", "wrong_material", "useful"]
assert set(Reason.__args__) == set(FEEDBACK_REASONS)  # type: ignore[attr-defined]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason
    comment: str = Field(default="", max_length=2000)
    mute: bool = Field(default=False, description="Also silence the alert's material and rule (admins)")


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    alert_id: str
    reason: Reason
    comment: str
    created_by: str
    created_at: datetime
    silence_id: str | None


@router.post(
    "/alerts/{alert_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackOut,
    responses={403: {"description": "`mute` without the admin role"}},
)
def give_feedback(
    alert_id: str,
    body: FeedbackIn,
    principal: Principal = Depends(tenant_member),
    session: Session = Depends(db_session),
) -> FeedbackOut:
    """Say what an alert was worth (any member); `mute: true` also silences its material and rule (admins)."""
    if body.mute and not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "muting needs the admin role")
    row = feedback.add_feedback(
        session,
        organisation_of(principal),
        principal.clearance,
        alert_id,
        reason=body.reason,
        comment=body.comment,
        by=principal.actor,
        mute=body.mute,
    )
    session.commit()
    FEEDBACK.labels(row.reason, row.rule, row.material).inc()
    log.info(
        "alert feedback",
        extra={
            "organisation_id": row.organisation_id,
            "alert_id": row.alert_id,
            "reason": row.reason,
            "muted": row.silence_id is not None,
        },
    )
    return FeedbackOut.model_validate(row)


@router.get(
    "/feedback/classifier-cases",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One JSON line per news item behind an alert that has feedback",
        }
    },
)
def export_classifier_cases(
    principal: Principal = Depends(tenant_member), session: Session = Depends(db_session)
) -> StreamingResponse:
    """All organisations' feedback on news-based alerts as `mews news classify` cases (government operators).

    Feedback on alerts without news evidence is left out; the `Mews-Skipped-Not-News` header counts it.
    """
    if not principal.may_see_exposure:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the feedback export is for government-cleared ministries and agencies only"
        )
    count = feedback.ExportCount()
    lines = [json.dumps(case, ensure_ascii=False) + "\n" for case in feedback.classifier_cases(session, count)]
    # Reading across organisations is audited.
    log.info(
        "feedback exported",
        extra={
            "organisation_id": principal.organisation_id,
            "by": principal.actor,
            "cases": count.cases,
            "skipped_not_news": count.skipped_not_news,
        },
    )
    return StreamingResponse(
        iter(lines), media_type="application/x-ndjson", headers={"Mews-Skipped-Not-News": str(count.skipped_not_news)}
    )
