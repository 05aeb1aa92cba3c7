"""sessions remember the browser and address that logged in

Revision ID: 0013
Revises: 0007
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Sessions from before this say nothing of their device; the page shows "unknown".
    # Plain ADD COLUMN: SQLite adds a column with a constant default without a copy.
    op.add_column(
        "sessions", sa.Column("user_agent", sa.String(300), server_default="", nullable=False)
    )
    op.add_column(
        "sessions", sa.Column("address", sa.String(64), server_default="", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.drop_column("address")
        batch_op.drop_column("user_agent")
