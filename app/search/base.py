"""The search index protocol the writer (and later edits and deletes) keep in step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


class SearchIndex(Protocol):
    """Each call runs on the caller's connection, inside the caller's transaction, so
    the index commits (or rolls back) with the messages it describes."""

    async def add(self, conn: AsyncConnection, message_ids: Sequence[int]) -> None:
        """Index messages just inserted (one statement for a whole batch)."""

    async def update(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        """Re-index a message whose text changed from ``old_text`` (an edit)."""

    async def remove(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        """Take a message out of the index (a delete)."""
