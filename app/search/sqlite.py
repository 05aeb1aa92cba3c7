"""SQLite FTS5: an external-content table over messages.text.

External content keeps the text once (in messages); the FTS table holds only the
index. FTS5 cannot see changes to its content table by itself, so every insert,
edit and delete tells it, in the same transaction.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Row, Select, bindparam, column, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Message
from app.search.query import Parsed, to_fts5

TABLE = "messages_fts"
# remove_diacritics 2: "café" and "cafe" are one token; unicode61 folds case.
CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "text, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')"
)
# Rows that go by cascade (a deleted room's; a removed user's stay, app.removal)
# never pass through the app: a trigger takes them out of the index in the
# deleting transaction.
FORGET_TRIGGER = (
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_forget AFTER DELETE ON messages BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, text) VALUES('delete', old.id, old.text); END"
)
DROP = f"DROP TABLE IF EXISTS {TABLE}"
DROP_TRIGGER = f"DROP TRIGGER IF EXISTS {TABLE}_forget"
# Rows a ``talkroom reindex`` has still to index (app.search.reindex) are left to
# it: indexing or forgetting one here as well would count it twice. Migration 0014
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
# Every term FTS5 has indexed, so a prefix can be searched as the terms it begins:
# FTS5 answers a prefix query by merging the whole of every matching term's list
# first (~70 ms for a word in half of 1M messages), but walks exact terms lazily,
# newest first, and stops at the page's end (~0.1 ms). Kept in step by add() and
# update() (it never shrinks: a term no message has any more matches nothing),
# filled from FTS5's own vocabulary by migration 0014 and by reindex.
TERMS = f"{TABLE}_terms"
ADD_TERMS = text(f"INSERT OR IGNORE INTO {TERMS}(term) SELECT value FROM json_each(:terms)")
PREFIXED = text(
    f"SELECT term FROM {TERMS} WHERE term >= :low AND term < :high ORDER BY term LIMIT :n"
)
# The vocabulary FTS5 keeps (a temporary table: nothing in the schema to migrate).
VOCABULARY = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{TABLE}_vocab USING fts5vocab(main, {TABLE}, row)"
)
TERMS_FROM_VOCABULARY = f"INSERT OR IGNORE INTO {TERMS}(term) SELECT term FROM temp.{TABLE}_vocab"
TEXTS = text("SELECT text FROM messages WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
MAX_EXPANSION = 64  # terms a prefix becomes at most; more: FTS5's own prefix query
# unicode61's tokens: runs of letters and digits, case and diacritics folded.
TOKEN = re.compile(r"[^\W_]+")
FTS = table(TABLE, column("rowid", Integer))
MESSAGES = Message.__table__


def fold(term: str) -> str:
    """A token as unicode61 (remove_diacritics 2) indexes it."""
    decomposed = unicodedata.normalize("NFD", term)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def terms_of(texts: Iterable[str]) -> str:
    """The distinct terms of ``texts``, as a JSON list for ADD_TERMS."""
    return json.dumps(sorted({fold(t) for text_ in texts for t in TOKEN.findall(text_)}))


class SqliteIndex:
    def add(self, conn: Connection, messages: Sequence[tuple[int, str]]) -> None:
        if messages:
            conn.execute(ADD, {"ids": [id_ for id_, _ in messages]})
            conn.execute(ADD_TERMS, {"terms": terms_of(text_ for _, text_ in messages)})

    def update(self, conn: Connection, message_id: int, old_text: str) -> None:
        conn.execute(FORGET, {"id": message_id, "old": old_text})
        conn.execute(ADD_ONE, {"id": message_id})
        texts = conn.execute(TEXTS, {"ids": [message_id]}).scalars()
        conn.execute(ADD_TERMS, {"terms": terms_of(texts)})

    def remove(self, conn: Connection, message_id: int, old_text: str) -> None:
        conn.execute(FORGET, {"id": message_id, "old": old_text})

    async def expand(self, session: AsyncSession, parsed: Parsed) -> None:
        for word in dict.fromkeys(parsed.words):
            low = fold(word)
            if not TOKEN.fullmatch(low):
                continue  # several tokens to FTS5 ("a_b"): a prefix phrase
            params = {"low": low, "high": low + "\U0010ffff", "n": MAX_EXPANSION + 1}
            terms = list((await session.execute(PREFIXED, params)).scalars())
            if len(terms) <= MAX_EXPANSION:
                parsed.expansions[word] = [t for t in terms if t != low]

    async def find(
        self,
        session: AsyncSession,
        query: Select[Any],
        parsed: Parsed,
        before: int | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        # Driven from the FTS table: FTS5 walks a term's rowids in either order and
        # takes the rowid bound and the ORDER BY itself, so a page of a common word
        # stops after ``limit`` rows instead of sorting every hit.
        query = (
            query.join(FTS, FTS.c.rowid == MESSAGES.c.id)
            .where(text(f"{TABLE} MATCH :match").bindparams(match=to_fts5(parsed)))
            .order_by(FTS.c.rowid.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(FTS.c.rowid < before)
        return list((await session.execute(query)).all())
