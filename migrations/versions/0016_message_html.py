"""messages.html: the text rendered as HTML at save time

Revision ID: 0016
Revises: 0015

Existing messages keep html NULL and are rendered from their text when read
(app.render.text_html), so this is instant on a table of any size: adding a
nullable column without a default rewrites no rows on SQLite or PostgreSQL.
Rendering a million rows here would hold up `talkroom serve` for minutes, and a
NULL is also how a later change to the formatting rules re-renders old messages.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("html", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not a batch operation: on SQLite that copies the table, which drops the
    # search index's triggers on it. SQLite 3.35+ drops a column in place.
    op.drop_column("messages", "html")
