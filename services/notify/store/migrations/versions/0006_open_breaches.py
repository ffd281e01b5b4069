"""Open breaches: the latest firing state of each breach still open, so a new subscription is told of it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open_breaches",
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("material", sa.String(length=64), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("breach", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_open_breaches")),
    )
    with op.batch_alter_table("open_breaches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_open_breaches_material"), ["material"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("open_breaches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_open_breaches_material"))
    op.drop_table("open_breaches")
