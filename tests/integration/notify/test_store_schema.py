"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from services.notify.store.db import create_db_engine, current_revision, migrate
from services.notify.store.models import Base, Channel, Notification, Organisation

pytestmark = pytest.mark.integration


def test_upgrade_head_yields_the_schema_of_the_models(database_url: str) -> None:
    migrate(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "compare_server_default": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
        assert current_revision(engine) is not None
    finally:
        engine.dispose()


def test_migrate_twice_is_harmless(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)
    engine = create_db_engine(database_url)
    try:
        assert "notifications" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc_and_compare_correctly(db_sessions) -> None:
    noon = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with db_sessions() as session:
        org = Organisation(name="Acme", kind="company", clearance="public")
        session.add(org)
        session.flush()
        channel = Channel(organisation_id=org.id, kind="email", target="ops@acme.example")
        session.add(channel)
        session.flush()
        session.add_all([
            Notification(organisation_id=org.id, channel_id=channel.id, kind="alert",
                         next_attempt_at=noon - timedelta(minutes=1)),
            Notification(organisation_id=org.id, channel_id=channel.id, kind="alert",
                         next_attempt_at=noon + timedelta(minutes=1)),
        ])
        session.commit()
    with db_sessions() as session:
        due = session.scalars(select(Notification).where(Notification.next_attempt_at <= noon)).all()
        assert len(due) == 1
        assert due[0].next_attempt_at == datetime(2026, 3, 1, 11, 59, tzinfo=UTC)
        assert due[0].next_attempt_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(db_sessions) -> None:
    from sqlalchemy.exc import StatementError

    with db_sessions() as session:
        session.add(Organisation(name="Naive", kind="company", created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()
