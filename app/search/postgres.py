"""PostgreSQL full text: a GIN expression index on to_tsvector('simple', text).

The index is an expression over messages.text, so PostgreSQL keeps it in step with
every insert, edit and delete itself: these hooks have nothing to do. ``simple``
does no stemming and no stop words, so names and code tokens match as typed.
``unaccent`` is not used yet: it is not IMMUTABLE, so it cannot go in an index
expression without a wrapper function (left for later; accents are not folded on
PostgreSQL until then).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

CREATE = (
    "CREATE INDEX IF NOT EXISTS ix_messages_search "
    "ON messages USING gin (to_tsvector('simple', text))"
)
DROP = "DROP INDEX IF EXISTS ix_messages_search"


class PostgresIndex:
    async def add(self, conn: AsyncConnection, message_ids: Sequence[int]) -> None:
        return None

    async def update(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        return None

    async def remove(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        return None
