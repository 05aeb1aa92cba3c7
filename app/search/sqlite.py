"""SQLite FTS5: an external-content table over messages.text.

External content keeps the text once (in messages); the FTS table holds only the
index. FTS5 cannot see changes to its content table by itself, so every insert,
edit and delete tells it, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Select, bindparam, column, table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import Message
from app.search.query import Parsed, to_fts5

TABLE = "messages_fts"
# remove_diacritics 2: "café" and "cafe" are one token; unicode61 folds case.
CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "text, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')"
)
# Rows that go by cascade (a deleted room or user) never pass through the app: a
# trigger takes them out of the index in the deleting transaction.
FORGET_TRIGGER = (
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_forget AFTER DELETE ON messages BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, text) VALUES('delete', old.id, old.text); END"
)
DROP = f"DROP TABLE IF EXISTS {TABLE}"
DROP_TRIGGER = f"DROP TRIGGER IF EXISTS {TABLE}_forget"
# Rows a ``talkroom reindex`` has still to index (app.search.reindex) are left to
# it: indexing or forgetting one here as well would count it twice. Migration 0008
# gives the delete trigger the same condition.
NOT_PENDING = "NOT EXISTS (SELECT 1 FROM search_reindex r WHERE {id} > r.done AND {id} <= r.upto)"
ADD = text(
    f"INSERT INTO {TABLE}(rowid, text) SELECT id, text FROM messages WHERE id IN :ids "
    f"AND {NOT_PENDING.format(id='messages.id')}"
).bindparams(bindparam("ids", expanding=True))
# An external-content delete must be given the text that was indexed.
FORGET = text(
    f"INSERT INTO {TABLE}({TABLE}, rowid, text) SELECT 'delete', :id, :old "
    f"WHERE {NOT_PENDING.format(id=':id')}"
)
ADD_ONE = text(
    f"INSERT INTO {TABLE}(rowid, text) SELECT id, text FROM messages WHERE id = :id "
    f"AND {NOT_PENDING.format(id='messages.id')}"
)
FTS = table(TABLE, column("rowid", Integer))
MESSAGES = Message.__table__


class SqliteIndex:
    async def add(self, conn: AsyncConnection, message_ids: Sequence[int]) -> None:
        if message_ids:
            await conn.execute(ADD, {"ids": list(message_ids)})

    async def update(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        await conn.execute(FORGET, {"id": message_id, "old": old_text})
        await conn.execute(ADD_ONE, {"id": message_id})

    async def remove(self, conn: AsyncConnection, message_id: int, old_text: str) -> None:
        await conn.execute(FORGET, {"id": message_id, "old": old_text})

    def matching(self, query: Select[Any], parsed: Parsed, before: int | None) -> Select[Any]:
        # Driven from the FTS table: FTS5 walks a term's rowids in either order and
        # takes the rowid bound and the ORDER BY itself, so a page of a common word
        # stops after ``limit`` rows instead of sorting every hit.
        query = (
            query.join(FTS, FTS.c.rowid == MESSAGES.c.id)
            .where(text(f"{TABLE} MATCH :match").bindparams(match=to_fts5(parsed)))
            .order_by(FTS.c.rowid.desc())
        )
        return query if before is None else query.where(FTS.c.rowid < before)
