"""Alert feedback: record what people said about an alert, mute from it, and turn news-based feedback into
classifier cases (the JSON lines `mews news classify` and its evaluation read)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notify.store import alerts, silences
from services.notify.store.models import Alert, AlertFeedback, utcnow
from shared.events import Topic

# What the classifier should have said of the news behind an alert, by what the reader said of the alert.
NOT_RELEVANT = ("irrelevant", "false_data")
MATERIAL_WRONG = ("wrong_material",)
# The supply signals scoring counts as news: every topic but export controls (scored as controls) and none.
SIGNAL_TOPICS = frozenset(t.value for t in Topic) - {Topic.EXPORT_CONTROL.value, Topic.NONE.value}


def add_feedback(
    session: Session,
    organisation_id: str,
    clearance: str,
    alert_id: str,
    *,
    reason: str,
    comment: str,
    by: str,
    mute: bool = False,
    now: datetime | None = None,
) -> AlertFeedback:
    """Record feedback on an alert of the organisation; `mute` also silences its (material, rule) for as long
    as a silence may last."""
    now = now or utcnow()
    alert = alerts.get_alert(session, organisation_id, clearance, alert_id)
    silence_id = None
    if mute:
        silence = silences.create_silence(
            session,
            organisation_id,
            material=alert.material,
            rule=alert.rule,
            ends_at=now + silences.MAX_SILENCE,
            created_by=by,
            now=now,
            starts_at=now,
            comment=f"muted from feedback ({reason}): {comment}"[:2000],
        )
        silence_id = silence.id
    row = AlertFeedback(
        organisation_id=organisation_id,
        alert_id=alert.id,
        material=alert.material,
        rule=alert.rule,
        reason=reason,
        comment=comment,
        created_by=by[:320],
        created_at=now,
        silence_id=silence_id,
    )
    session.add(row)
    session.flush()
    return row


def list_feedback(session: Session, alert_id: str) -> list[AlertFeedback]:
    """The feedback on one alert, oldest first (the caller has checked the alert is theirs)."""
    return list(
        session.scalars(
            select(AlertFeedback)
            .where(AlertFeedback.alert_id == alert_id)
            .order_by(AlertFeedback.created_at, AlertFeedback.id)
        )
    )


@dataclass
class ExportCount:
    cases: int = 0
    skipped_not_news: int = 0


def classifier_cases(session: Session, count: ExportCount) -> Iterator[dict[str, Any]]:
    """Every organisation's feedback as classifier cases: one per news item in the alert's evidence.

    Feedback on an alert with no news evidence (prices, trade, lead times, stocks) has no text a classifier
    reads; it is counted in `count.skipped_not_news` and left out.
    """
    rows = session.execute(
        select(AlertFeedback, Alert)
        .join(Alert, Alert.id == AlertFeedback.alert_id)
        .order_by(AlertFeedback.created_at, AlertFeedback.id)
    )
    for feedback, alert in rows:
        news = [e for e in (alert.breach or {}).get("evidence", []) if e.get("kind") == "news"]
        if not news:
            count.skipped_not_news += 1
            continue
        for number, item in enumerate(news, start=1):
            count.cases += 1
            yield classifier_case(feedback, alert, item, number)


def classifier_case(feedback: AlertFeedback, alert: Alert, item: dict[str, Any], number: int) -> dict[str, Any]:
    """One news item behind an alert, labelled with what the reader's feedback says the classifier should find.

    The notifier keeps no article text: `text` is the alert's (English) summary and `url` the article, for
    the analyst to paste its text before the case joins a labelled set. `wrong_material` says which material
    the item is not about (`not_materials`), not which it is: `materials` is left for the analyst.
    """
    value = str(item.get("value") or "")
    relevant = feedback.reason not in NOT_RELEVANT
    materials = [alert.material] if relevant and feedback.reason not in MATERIAL_WRONG else []
    title = ""
    if str((alert.breach or {}).get("indicator") or "").startswith("news_"):
        # A supply-signal item (scoring's "topic[, figure]: title"), not a control ("CN export_ban").
        described, _, title = value.partition(": ")
        topic = described.partition(",")[0]
        expected: dict[str, Any] = {
            "materials": materials,
            "countries": [],
            "measure": "none",
            "relevant": relevant,
            "topic": topic if topic in SIGNAL_TOPICS else "none",
        }
    else:
        country, _, measure = value.partition(" ")
        expected = {
            "materials": materials,
            "countries": [country] if country else [],
            "measure": measure or "none",
            "relevant": relevant,
            "topic": "export_control" if measure else "none",
        }
    if feedback.reason in MATERIAL_WRONG:
        expected["not_materials"] = [alert.material]
    return {
        "id": f"feedback-{feedback.id}-{number}",
        "lang": "en",
        "published": str(item.get("time", ""))[:10],
        "title": title,
        "text": alert.summary,
        "url": item.get("url", ""),
        "expected": expected,
        "split": "feedback",
        "feedback": {
            "reason": feedback.reason,
            "comment": feedback.comment,
            "rule": feedback.rule,
            "alert_id": alert.id,
            "evidence_id": item.get("id", ""),
        },
    }
