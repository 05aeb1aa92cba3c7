"""The search index protocol: the writer (and later edits and deletes) keep it in
step, and app.search.find asks it for the matching messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.search.query import Parsed


class SearchIndex(Protocol):
    """Each call runs on the caller's connection, inside the caller's transaction, so
    the index commits (or rolls back) with the messages it describes."""

    async def add(self, conn: AsyncConnection, message_ids: Sequence[int]) -> None:
        """Index messages just inserted (one statement for a whole batch)."""

    async def update(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        """Re-index a message whose text changed from ``old_text`` (an edit)."""

    async def remove(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        """Take a message out of the index (a delete)."""

    async def expand(self, session: AsyncSession, parsed: Parsed) -> None:
        """Fill ``parsed.expansions`` where this index answers exact terms faster
        than prefixes (or do nothing)."""

    async def find(
        self,
        session: AsyncSession,
        query: Select[Any],
        parsed: Parsed,
        before: int | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """The rows of ``query`` (a select from messages, already scoped by access
        and filters) whose text matches ``parsed``'s words and phrases, with ids
        below ``before``, newest (highest id) first, at most ``limit``: run in the
        way this index answers fastest."""
        ...
