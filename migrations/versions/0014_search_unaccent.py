"""search: accent folding on PostgreSQL (unaccent), resumable reindexing, and the
list of FTS5's terms on SQLite (prefixes searched as the terms they begin)

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")

# Spelled out here, not imported: a migration must keep doing what it did when it
# was written. app.search.postgres.DOCUMENT must stay the same expression.
FUNCTION = (
    "CREATE OR REPLACE FUNCTION talkroom_unaccent(text) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT {body} $$"
)
OLD_INDEX = "CREATE INDEX ix_messages_search ON messages USING gin (to_tsvector('simple', text))"
NEW_INDEX = (
    "CREATE INDEX ix_messages_search ON messages "
    "USING gin (to_tsvector('simple', translate(talkroom_unaccent(text), '<>', '  ')))"
)

FORGET = (
    "BEGIN INSERT INTO messages_fts(messages_fts, rowid, text) "
    "VALUES('delete', old.id, old.text); END"
)
TRIGGER_0007 = f"CREATE TRIGGER messages_fts_forget AFTER DELETE ON messages {FORGET}"
GUARDED_TRIGGER = (
    "CREATE TRIGGER messages_fts_forget AFTER DELETE ON messages WHEN NOT EXISTS "
    f"(SELECT 1 FROM search_reindex r WHERE old.id > r.done AND old.id <= r.upto) {FORGET}"
)


def _unaccent_schema() -> str | None:
    """The schema of the unaccent extension, installing it if we may; None if not.

    unaccent is a trusted extension (PostgreSQL 13+): a database owner may install
    it without being a superuser. Where it is missing or refused, search still works,
    without folding accents."""
    bind = op.get_bind()
    available = bind.scalar(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")
    )
    if available:
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
        except sa.exc.DBAPIError as exc:
            logger.warning("Cannot install the unaccent extension (%s).", exc.orig)
    schema = bind.scalar(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'unaccent'"
        )
    )
    if schema is None:
        logger.warning("Search on PostgreSQL will not fold accents: no unaccent extension.")
    return schema


def upgrade() -> None:
    op.create_table(
        "search_reindex",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upto", sa.BigInteger(), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_reindex")),
    )
    if op.get_bind().dialect.name == "sqlite":
        # FTS5's unicode61 tokenizer folds accents already (remove_diacritics 2). The
        # trigger leaves the rows a reindex has yet to index to it.
        op.execute("DROP TRIGGER IF EXISTS messages_fts_forget")
        op.execute(GUARDED_TRIGGER)
        # The terms FTS5 has indexed (app.search.sqlite.TERMS), from its vocabulary.
        op.execute("CREATE TABLE messages_fts_terms (term TEXT PRIMARY KEY) WITHOUT ROWID")
        op.execute(
            "CREATE VIRTUAL TABLE temp.messages_fts_vocab USING fts5vocab(main, messages_fts, row)"
        )
        op.execute("INSERT INTO messages_fts_terms(term) SELECT term FROM temp.messages_fts_vocab")
        op.execute("DROP TABLE temp.messages_fts_vocab")
        return
    schema = _unaccent_schema()
    # The dictionary is named, with its schema: an IMMUTABLE function must not depend
    # on the search_path it is called with.
    body = f'"{schema}".unaccent(\'"{schema}".unaccent\'::regdictionary, $1)' if schema else "$1"
    op.execute(FUNCTION.format(body=body))
    op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.execute(NEW_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS messages_fts_forget")
        op.execute(TRIGGER_0007)
        op.execute("DROP TABLE messages_fts_terms")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
        op.execute(OLD_INDEX)
        op.execute("DROP FUNCTION IF EXISTS talkroom_unaccent(text)")
    op.drop_table("search_reindex")
