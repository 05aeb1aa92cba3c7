"""search on PostgreSQL: a stored tsvector column with the GIN index on it (the
expression index recomputed every message's tsvector whenever a search walked it)

Revision ID: 0022
Revises: 0021

The ADD COLUMN rewrites the messages table, holding its lock meanwhile (no reads
or writes of messages): ~2 minutes for 1M messages on a busy 2-core machine, then
~40 s for the index (bench/RESULTS.md, 2026-12-03). The old index is dropped
first, so the rewrite does not rebuild it only to throw it away.
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# Spelled out here, not imported: a migration must keep doing what it did when it
# was written. app.search.postgres.DOCUMENT must stay the same expression.
DOCUMENT = "to_tsvector('simple', translate(talkroom_unaccent(text), '<>', '  '))"
EXPRESSION_INDEX = f"CREATE INDEX ix_messages_search ON messages USING gin ({DOCUMENT})"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # FTS5 keeps its own index (app.search.sqlite)
    op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.execute(
        "ALTER TABLE messages ADD COLUMN search_document tsvector "
        f"GENERATED ALWAYS AS ({DOCUMENT}) STORED"
    )
    op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search_document)")
    op.execute("ANALYZE messages (search_document)")  # a second or so; its statistics


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.execute("ALTER TABLE messages DROP COLUMN search_document")
    op.execute(EXPRESSION_INDEX)
