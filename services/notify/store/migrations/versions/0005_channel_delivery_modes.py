"""Channels get a weekly digest (`digest_every`), a minimum severity, quiet hours and a time zone.

Only added columns: a new CHECK constraint on SQLite means rebuilding the table, and dropping the old one would
cascade to the channel's notifications. The API validates the values.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("digest_every", "min_severity", "quiet_from_hour", "quiet_until_hour", "timezone")


def upgrade() -> None:
    op.add_column("channels", sa.Column("digest_every", sa.String(length=8), nullable=False, server_default="day"))
    op.add_column("channels", sa.Column("min_severity", sa.String(length=16), nullable=False, server_default="warning"))
    op.add_column("channels", sa.Column("quiet_from_hour", sa.Integer(), nullable=True))
    op.add_column("channels", sa.Column("quiet_until_hour", sa.Integer(), nullable=True))
    op.add_column("channels", sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("channels", name)
