"""The index of notifications by organisation and status also orders by delivered_at, for the crisis list's
count of deliveries since an episode began (status 'delivered', delivered_at >= since, of these organisations).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Replaces the two-column index (its prefix): as many indexes to keep up on every outbox write as before.
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_organisation_id_status_delivered_at",
            ["organisation_id", "status", "delivered_at"],
            unique=False,
        )
        batch_op.drop_index("ix_notifications_organisation_id_status")


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_organisation_id_status", ["organisation_id", "status"], unique=False)
        batch_op.drop_index("ix_notifications_organisation_id_status_delivered_at")
