"""The alert store's bulk writes keep every value exactly, on SQLite and on PostgreSQL (one statement per batch
there: each column one array literal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.notify.pipeline.alert import Alert, LogEntry
from services.notify.store import models
from services.notify.store.alert_state import SqlAlertStore
from services.notify.store.db import unit_of_work
from shared.events import BreachStatus, Classification, Severity
from tests.integration.notify.world import add_org

pytestmark = pytest.mark.integration

AWKWARD = [
    "plain",
    'a "quoted" word',
    'back\\slash \\" both',
    "comma, {braces}",
    "NULL",
    "",
    "unit\x1fseparator",
    "ünïcödé ⚠ 镓",
    "it's",
    "\\",
    '"',
]


def test_bulk_upsert_keeps_awkward_text_nulls_json_and_times_and_updates_in_place(db_sessions) -> None:
    t0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with unit_of_work(db_sessions) as s:
        org_id = add_org(s, "Bulk org").id
    alerts = [
        Alert(
            organisation_id=org_id,
            fingerprint=f"fp-{i}-{text}",
            material="gallium",
            rule=text or "r",
            severity=Severity.WARNING,
            status=BreachStatus.FIRING,
            classification=Classification.PUBLIC,
            starts_at=t0 + timedelta(seconds=i),
            summary=text,
            breach={"summary": text, "n": i, "list": [text]},
            ends_at=None if i % 2 else t0,
            updated_at=t0,
            via=(text, "x"),
            id=models.new_id(),
        )
        for i, text in enumerate(AWKWARD)
    ]
    log = {
        (org_id, f"group {text}", a.fingerprint): LogEntry("firing:warning", t0)
        for text, a in zip(AWKWARD, alerts, strict=True)
    }
    with unit_of_work(db_sessions) as s:
        store = SqlAlertStore(s)
        store.save_alerts(alerts)
        store.record_sent(log)
    resolved = [a.evolve(status=BreachStatus.RESOLVED, ends_at=t0 + timedelta(hours=1)) for a in alerts]
    with unit_of_work(db_sessions) as s:
        store = SqlAlertStore(s)
        store.save_alerts(resolved)
        store.record_sent({key: LogEntry("resolved", t0 + timedelta(hours=1)) for key in log})
    with unit_of_work(db_sessions) as s:
        rows = {r.fingerprint: r for r in s.scalars(select(models.Alert).where(models.Alert.organisation_id == org_id))}
        entries = {(e.group_key, e.fingerprint): e for e in s.scalars(select(models.NotificationLogEntry))}
    assert len(rows) == len(AWKWARD)
    for i, (text, a) in enumerate(zip(AWKWARD, alerts, strict=True)):
        row = rows[a.fingerprint]
        assert (row.id, row.rule, row.summary, row.status) == (a.id, text or "r", text, "resolved")
        assert row.breach == {"summary": text, "n": i, "list": [text]}
        assert row.via == [text, "x"]
        assert row.starts_at == t0 + timedelta(seconds=i)
        assert row.ends_at == t0 + timedelta(hours=1)
        entry = entries[(f"group {text}", a.fingerprint)]
        assert (entry.last_status, entry.last_sent_at) == ("resolved", t0 + timedelta(hours=1))


def test_bulk_upsert_writes_nulls_as_nulls(db_sessions) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    with unit_of_work(db_sessions) as s:
        org_id = add_org(s, "Null org").id
    alerts = [
        Alert(
            organisation_id=org_id,
            fingerprint=f"fp-{i}",
            material="gallium",
            rule="r",
            severity=Severity.CRITICAL,
            status=BreachStatus.FIRING,
            classification=Classification.PUBLIC,
            starts_at=t0,
            summary="s",
            ends_at=None,
            updated_at=t0,
            id=models.new_id(),
        )
        for i in range(3)
    ]
    with unit_of_work(db_sessions) as s:
        SqlAlertStore(s).save_alerts(alerts)
    with unit_of_work(db_sessions) as s:
        ends = list(s.scalars(select(models.Alert.ends_at).where(models.Alert.organisation_id == org_id)))
    assert ends == [None, None, None]
