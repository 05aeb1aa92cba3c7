"""PostgreSQL full text: a GIN expression index on the message text, unaccented,
as the ``simple`` configuration cuts it into words (DOCUMENT).

The index is an expression over messages.text, so PostgreSQL keeps it in step with
every insert, edit and delete itself: these hooks have nothing to do. ``simple``
does no stemming and no stop words, so names and code tokens match as typed.

Accents: ``unaccent()`` is only STABLE (its dictionary could change), so it cannot
sit in an index expression; migration 0014 wraps it in ``talkroom_unaccent(text)``,
declared IMMUTABLE with the dictionary named, the usual way round this. Where the
unaccent extension cannot be installed the wrapper returns its argument, and only
accent folding is lost. Queries must spell the indexed expression exactly as the
index does, or PostgreSQL cannot use it: DOCUMENT is that expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Message
from app.search.query import Parsed, to_tsquery

# Migration 0007 made the first index (no accent folding); 0014 replaced it.
CREATE = (
    "CREATE INDEX IF NOT EXISTS ix_messages_search "
    "ON messages USING gin (to_tsvector('simple', text))"
)
DROP = "DROP INDEX IF EXISTS ix_messages_search"
INDEX = "ix_messages_search"
# translate: PostgreSQL's parser reads "<script>" as an HTML tag, which no
# configuration indexes; as plain text it is the word "script".
DOCUMENT = "to_tsvector('simple', translate(talkroom_unaccent(text), '<>', '  '))"
MESSAGES = Message.__table__


class PostgresIndex:
    async def add(self, conn: AsyncConnection, message_ids: Sequence[int]) -> None:
        return None

    async def update(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        return None

    async def remove(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        return None

    async def expand(self, session: AsyncSession, parsed: Parsed) -> None:
        return None  # a GIN prefix match reads only the matching entries

    def matching(self, query: Select[Any], parsed: Parsed, before: int | None) -> Select[Any]:
        # "text" is messages.text here: every other table joined has no such column.
        match = text(
            f"{DOCUMENT} @@ to_tsquery('simple', talkroom_unaccent(CAST(:tsquery AS text)))"
        ).bindparams(tsquery=to_tsquery(parsed))
        query = query.where(match).order_by(MESSAGES.c.id.desc())
        return query if before is None else query.where(MESSAGES.c.id < before)
