"""The search index protocol: the writer (and later edits and deletes) keep it in
step, and app.search.find asks it for the matching messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.search.query import Parsed


class SearchIndex(Protocol):
    """Each change runs on the caller's connection, inside the caller's transaction,
    so the index commits (or rolls back) with the messages it describes. Changes are
    synchronous, as the writer's transaction is (app.db.Database.run_write); an
    async caller runs them with ``await conn.run_sync(index.update, ...)``."""

    def add(self, conn: Connection, messages: Sequence[tuple[int, str]]) -> None:
        """Index messages just inserted, given as (id, text) (a few statements for a
        whole batch)."""

    def update(self, conn: Connection, message_id: int, old_text: str) -> None:
        """Re-index a message whose text changed from ``old_text`` (an edit)."""

    def remove(self, conn: Connection, message_id: int, old_text: str) -> None:
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
