"""room kinds (public, private, direct), their creators and members

Revision ID: 0004
Revises: 0006
Create Date: 2026-12-02 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every room so far was open to everyone: it stays public. Plain ADD COLUMNs, not
    # a batch: on SQLite a batch copies the table and drops the old one, and the drop
    # would cascade to every message (messages.room_id is ON DELETE CASCADE).
    op.add_column(
        "rooms", sa.Column("kind", sa.String(length=16), server_default="public", nullable=False)
    )
    # No foreign key: SQLite can add one only by copying the table (see above).
    # app.users.delete_user clears a removed user's rooms' created_by instead.
    op.add_column("rooms", sa.Column("created_by", sa.Integer(), nullable=True))
    op.add_column("rooms", sa.Column("direct_key", sa.String(length=100), nullable=True))
    op.create_index("ix_rooms_direct_key", "rooms", ["direct_key"], unique=True)
    op.create_table(
        "room_members",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_room_members_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_room_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_room_members")),
    )
    op.create_index("ix_room_members_user_id", "room_members", ["user_id"], unique=False)


def downgrade() -> None:
    # On SQLite this batch copies rooms, and dropping the old table cascades to its
    # messages unless foreign keys are off: back up before going below 0004 there.
    op.drop_index("ix_room_members_user_id", table_name="room_members")
    op.drop_table("room_members")
    op.drop_index("ix_rooms_direct_key", table_name="rooms")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("direct_key")
        batch_op.drop_column("created_by")
        batch_op.drop_column("kind")
