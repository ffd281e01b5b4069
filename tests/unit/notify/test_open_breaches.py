"""The open breaches catch-up offers: the latest firing state per fingerprint, a resolution forgets it, and an
older state (a replay) changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.store import open_breaches
from services.notify.store.db import create_db_engine, migrate, session_factory
from shared.events import BreachRaised, BreachStatus, Severity

AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    engine = create_db_engine(url)
    yield session_factory(engine)
    engine.dispose()


def breach(
    fingerprint: str, minutes: int, status: BreachStatus = BreachStatus.FIRING, severity: Severity = Severity.WARNING
) -> BreachRaised:
    return BreachRaised(
        fingerprint=fingerprint,
        material="antimony",
        rule="price_spike",
        indicator="price",
        severity=severity,
        status=status,
        value=1.0,
        starts_at=AT,
        observed_at=AT + timedelta(minutes=minutes),
        summary="antimony",
    )


def test_latest_firing_state_is_kept_and_a_resolution_forgets_it(sessions) -> None:
    with sessions.begin() as s:
        open_breaches.remember(s, [breach("a", 1), breach("a", 2, severity=Severity.CRITICAL), breach("b", 1)])
    with sessions.begin() as s:
        open_breaches.remember(s, [breach("b", 3, BreachStatus.RESOLVED)])
    with sessions() as s:
        assert [(b.fingerprint, b.severity) for b in open_breaches.open_breaches(s)] == [("a", Severity.CRITICAL)]


def test_a_replayed_older_state_changes_nothing(sessions) -> None:
    with sessions.begin() as s:
        open_breaches.remember(s, [breach("a", 5)])
    with sessions.begin() as s:
        open_breaches.remember(s, [breach("a", 1, BreachStatus.RESOLVED), breach("a", 2, severity=Severity.CRITICAL)])
    with sessions() as s:
        assert [(b.fingerprint, b.severity) for b in open_breaches.open_breaches(s)] == [("a", Severity.WARNING)]
