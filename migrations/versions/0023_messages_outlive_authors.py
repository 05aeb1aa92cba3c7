"""messages outlive their authors: messages.author_id is nullable, ON DELETE SET NULL

Revision ID: 0023
Revises: 0022

Removing a user turns their messages into tombstones, each with its room's next
seq (app.users.delete_user), so open pages and resumes see them go; the foreign
key then clears the author instead of deleting the rows behind every seq's back.

SQLite cannot alter a foreign key in place: the table is copied (batch mode).
Foreign keys are turned off around the copy (the 12-step procedure of SQLite's
ALTER TABLE documentation): with them on, dropping the old table would first
delete its rows and cascade that to message_mentions, message_reactions,
attachments and webhook_deliveries. The copy keeps the ids, so the FTS5 index
(external content, by rowid) still describes its rows; the table's trigger goes
with the old table and is made again. The copy holds the database's one write
lock while it runs (its time grows with the table). PostgreSQL alters the column in place;
the new key checks every row, holding the messages table's lock meanwhile (a
scan of the table: seconds for a million messages).

The downgrade deletes the messages that have no author any more (tombstones of
removed users: under 0022 they would have gone with their author), then puts the
cascade back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

FK = "fk_messages_author_id_users"
CHECKED = ("messages", "message_mentions", "message_reactions", "attachments", "webhook_deliveries")
# Spelled out here, not imported: migration 0014's trigger, as it is at 0022.
FORGET_TRIGGER = (
    "CREATE TRIGGER messages_fts_forget AFTER DELETE ON messages WHEN NOT EXISTS "
    "(SELECT 1 FROM search_reindex r WHERE old.id > r.done AND old.id <= r.upto) "
    "BEGIN INSERT INTO messages_fts(messages_fts, rowid, text) "
    "VALUES('delete', old.id, old.text); END"
)


def upgrade() -> None:
    _author_key(nullable=True, ondelete="SET NULL")


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE author_id IS NULL")
    _author_key(nullable=False, ondelete="CASCADE")


def _author_key(*, nullable: bool, ondelete: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("messages", "author_id", existing_type=sa.Integer(), nullable=nullable)
        op.drop_constraint(FK, "messages", type_="foreignkey")
        op.create_foreign_key(FK, "messages", "users", ["author_id"], ["id"], ondelete=ondelete)
        return
    context = op.get_context()
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("messages", recreate="always") as batch_op:
        batch_op.alter_column("author_id", existing_type=sa.Integer(), nullable=nullable)
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.create_foreign_key(FK, "users", ["author_id"], ["id"], ondelete=ondelete)
    op.execute(FORGET_TRIGGER)
    # The copy and the tables that point at it, not the whole database: a row an
    # older bug left elsewhere is not this migration's to refuse.
    for table in CHECKED:
        broken = op.get_bind().execute(sa.text(f"PRAGMA foreign_key_check({table})")).all()
        if broken:
            raise RuntimeError(f"The copied messages break foreign keys: {broken[:5]}")
    # Committed with the copy (a failure above rolls it back, and the connection,
    # with foreign keys off, is closed with the migration's engine).
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")
