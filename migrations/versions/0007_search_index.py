"""search index: FTS5 on SQLite, a GIN tsvector index on PostgreSQL

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from app.search import postgres, sqlite

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sqlite.CREATE)
        op.execute(sqlite.FORGET_TRIGGER)
        # 'rebuild' indexes every existing message from the content table.
        op.execute(f"INSERT INTO {sqlite.TABLE}({sqlite.TABLE}) VALUES('rebuild')")
    else:
        op.execute(postgres.CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sqlite.DROP_TRIGGER)
        op.execute(sqlite.DROP)
    else:
        op.execute(postgres.DROP)
