"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
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
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
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
        session.add_all(
            [
                Notification(
                    organisation_id=org.id,
                    channel_id=channel.id,
                    kind="alert",
                    next_attempt_at=noon - timedelta(minutes=1),
                ),
                Notification(
                    organisation_id=org.id,
                    channel_id=channel.id,
                    kind="alert",
                    next_attempt_at=noon + timedelta(minutes=1),
                ),
            ]
        )
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


def test_upgrading_fills_scheduled_at_of_existing_notifications_from_their_payload(database_url: str) -> None:
    from sqlalchemy import text

    migrate(database_url, "0001")
    engine = create_db_engine(database_url)
    scheduled = datetime(2026, 3, 2, 9, 30, 5, 250000, tzinfo=UTC)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO organisations (id, name, kind, clearance, created_at) "
                    "VALUES ('o1', 'Acme', 'company', 'public', :now)"
                ),
                {"now": scheduled},
            )
            connection.execute(
                text(
                    "INSERT INTO channels (id, organisation_id, kind, target, mode, enabled, "
                    "consecutive_failures, language, created_at) VALUES ('c1', 'o1', 'webhook', "
                    "'https://acme.example/hook', 'immediate', true, 0, 'en', :now)"
                ),
                {"now": scheduled},
            )
            for row_id, kind, payload in (
                ("n1", "alert", {"scheduled_at": scheduled.isoformat(), "alerts": []}),
                ("n2", "admin_notice", {"recipients": []}),
            ):
                connection.execute(
                    text(
                        "INSERT INTO notifications (id, organisation_id, channel_id, kind, alert_ids, group_key, "
                        "payload, "
                        "webhook_id, status, attempts, next_attempt_at, created_at) VALUES (:id, 'o1', 'c1', :kind, "
                        "'[]', 'immediate:c1', :payload, :id, 'delivered', 1, :now, :now)"
                    ),
                    {"id": row_id, "kind": kind, "payload": json.dumps(payload), "now": scheduled},
                )
    finally:
        engine.dispose()
    migrate(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            found = dict(connection.execute(select(Notification.id, Notification.scheduled_at)).all())
        assert found == {"n1": scheduled, "n2": None}
    finally:
        engine.dispose()


def test_upgrading_to_chat_channel_kinds_keeps_every_row_and_still_refuses_an_unknown_kind(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from services.notify.store.db import alembic_config

    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    channel = (
        "INSERT INTO channels (id, organisation_id, kind, target, mode, enabled, consecutive_failures, "
        "language, created_at) VALUES (:id, 'o1', :kind, 'https://acme.example/hook', 'immediate', true, 0, "
        "'en', :now)"
    )
    migrate(database_url, "0002")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO organisations (id, name, kind, clearance, created_at) "
                    "VALUES ('o1', 'Acme', 'company', 'public', :now)"
                ),
                {"now": now},
            )
            connection.execute(text(channel), {"id": "c1", "kind": "webhook", "now": now})
            connection.execute(
                text(
                    "INSERT INTO notifications (id, organisation_id, channel_id, kind, alert_ids, group_key, payload, "
                    "webhook_id, status, attempts, next_attempt_at, created_at) VALUES ('n1', 'o1', 'c1', 'alert', "
                    "'[]', 'immediate:c1', '{}', 'n1', 'pending', 0, :now, :now)"
                ),
                {"now": now},
            )
    finally:
        engine.dispose()
    migrate(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(channel), {"id": "c2", "kind": "teams", "now": now})
            connection.execute(text(channel), {"id": "c3", "kind": "slack", "now": now})
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(channel), {"id": "c4", "kind": "fax", "now": now})
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id FROM notifications")).scalars().all() == ["n1"]
            assert sorted(connection.execute(text("SELECT kind FROM channels")).scalars()) == [
                "slack",
                "teams",
                "webhook",
            ]
    finally:
        engine.dispose()
    with create_db_engine(database_url).begin() as connection:  # and back: the chat channels go, the rest stays
        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        assert connection.execute(text("SELECT kind FROM channels")).scalars().all() == ["webhook"]
        assert connection.execute(text("SELECT id FROM notifications")).scalars().all() == ["n1"]
