"""message revisions: rev (the seq of a message's latest change), edits, tombstones

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns are only added (SQLite's ALTER TABLE ADD COLUMN): a batch copy of the
    # table would drop the search index's trigger and, with foreign keys on,
    # cascade its DROP to message_mentions. A NOT NULL column needs a default to be
    # added (a plain string: a SQL expression as default makes Alembic copy the
    # table after all); every existing message is as it was created: rev = seq.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rev", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE messages SET rev = seq")
    if op.get_bind().dialect.name != "sqlite":
        # The writer always sets rev; SQLite keeps the harmless default (dropping it
        # would take the table copy avoided above).
        op.alter_column("messages", "rev", server_default=None)
    op.create_index("ix_messages_room_rev", "messages", ["room_id", "rev"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_room_rev", table_name="messages")
    # In place, as the upgrade added them: a batch would copy the table (see above).
    for column in ("deleted_at", "edited_at", "rev"):
        op.drop_column("messages", column)
