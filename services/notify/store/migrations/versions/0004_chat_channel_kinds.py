"""Channels may also be Microsoft Teams (Workflows webhook) and Slack (incoming webhook).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "kind IN ('email', 'webhook')"
AFTER = "kind IN ('email', 'webhook', 'teams', 'slack')"


def _sqlite_rewrite(old: str, new: str) -> None:
    """Rewrite the CHECK in the stored table definition, as SQLite documents for constraint-only changes.

    Batch mode would rebuild the table, and dropping it runs its foreign keys' ON DELETE CASCADE (every
    notification of every channel) because foreign keys cannot be switched off inside the migration's
    transaction. The rows on disk do not change: every one of them satisfies both conditions.
    """
    connection = op.get_bind()
    sql = connection.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'channels'")
    ).scalar_one()
    if old not in sql:
        raise RuntimeError(f"channels table has no CHECK ({old}); not rewriting it")
    version = connection.execute(sa.text("PRAGMA schema_version")).scalar_one()
    connection.execute(sa.text("PRAGMA writable_schema = ON"))
    connection.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'channels'"),
        {"sql": sql.replace(old, new)},
    )
    connection.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    connection.execute(sa.text("PRAGMA writable_schema = OFF"))
    if connection.execute(sa.text("PRAGMA quick_check")).scalar_one() != "ok":  # checks CHECKs too
        raise RuntimeError("SQLite quick_check failed after rewriting the channels table")


def _kinds(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rewrite(old, new)
        return
    op.drop_constraint(op.f("ck_channels_kind"), "channels", type_="check")
    op.create_check_constraint(op.f("ck_channels_kind"), "channels", new)


def upgrade() -> None:
    _kinds(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM channels WHERE kind IN ('teams', 'slack')")
    _kinds(AFTER, BEFORE)
