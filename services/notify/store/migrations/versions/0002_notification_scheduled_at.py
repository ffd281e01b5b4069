"""Notifications keep when they were scheduled in a column, indexed by group, for finding a group's last flush.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:30:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFICATIONS = sa.table(
    "notifications",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("scheduled_at", sa.DateTime(timezone=True)),
)


def _scheduled_at(payload: object, dialect: str) -> datetime | None:
    if isinstance(payload, str):  # a driver that hands JSON back as text
        payload = json.loads(payload)
    at = payload.get("scheduled_at") if isinstance(payload, dict) else None
    if not at:
        return None
    value = datetime.fromisoformat(at).astimezone(UTC)
    # As the models' UTCDateTime stores it: naive UTC on SQLite, aware elsewhere.
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_notifications_group_key_scheduled_at", ["group_key", "scheduled_at"], unique=False)
    connection = op.get_bind()
    dialect = connection.dialect.name
    rows = connection.execute(
        sa.select(NOTIFICATIONS.c.id, NOTIFICATIONS.c.payload).where(NOTIFICATIONS.c.kind != "admin_notice")
    ).all()
    values = [
        {"row_id": row_id, "at": at} for row_id, payload in rows if (at := _scheduled_at(payload, dialect)) is not None
    ]
    if values:
        connection.execute(
            sa.update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id == sa.bindparam("row_id"))
            .values(scheduled_at=sa.bindparam("at")),
            values,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_group_key_scheduled_at")
        batch_op.drop_column("scheduled_at")
