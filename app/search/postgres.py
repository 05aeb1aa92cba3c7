"""PostgreSQL full text: a stored tsvector column, ``messages.search_document``,
with a GIN index on it.

The column is generated (migration 0022) from the text, unaccented, as the
``simple`` configuration cuts it into words (DOCUMENT): PostgreSQL keeps it in step
with every insert, edit and delete itself, so these hooks have nothing to do.
``simple`` does no stemming and no stop words, so names and code tokens match as
typed. It is not mapped in app.models: SQLite has no such column (FTS5 is its index).

Accents: ``unaccent()`` is only STABLE (its dictionary could change), so it cannot
sit in a generated column; migration 0014 wraps it in ``talkroom_unaccent(text)``,
declared IMMUTABLE with the dictionary named, the usual way round this. Where the
unaccent extension cannot be installed the wrapper returns its argument, and only
accent folding is lost.

Why a stored column and two steps (bench/RESULTS.md, 2026-12-03, has the plans):
the index cannot hand out matches newest first, so a page is either "walk the
newest messages, keep the matching ones" (cheap for a common word, ruinous for a
rare one) or "every match from the index, sorted" (the other way round). The
planner chose between them from estimates and chose wrong for words in ~0.1 % of
messages (50,000 rows walked) and for several common words (hundreds of thousands
sorted); with an expression index every row walked also recomputed its tsvector.
So the choice is ours, with a bound on each side:

1. the newest WINDOW messages (below ``before``) are walked and checked against the
   stored tsvector; a word in more than ~1 % of messages fills its page here. If
   the window found some but not a page, the walk goes on as far as their rate
   says the page needs, up to FURTHER windows (several words each in a few per
   cent of messages: the index would read every match of each);
2. only if the page is still not full, the older messages are asked of the GIN
   index, and sorted: what is left matched rarely, so few rows.

In step 1 the match is ``ts_match_vq()``, the function behind ``@@``: the planner
cannot turn a function call into an index condition, so the walk is what it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Message
from app.search.query import Parsed, to_tsquery

INDEX = "ix_messages_search"
COLUMN = "search_document"
# Migration 0007's first index (no accent folding); 0014 and 0022 replaced it.
CREATE = f"CREATE INDEX IF NOT EXISTS {INDEX} ON messages USING gin (to_tsvector('simple', text))"
DROP = f"DROP INDEX IF EXISTS {INDEX}"
# translate: PostgreSQL's parser reads "<script>" as an HTML tag, which no
# configuration indexes; as plain text it is the word "script".
DOCUMENT = "to_tsvector('simple', translate(talkroom_unaccent(text), '<>', '  '))"
# In a subquery: an InitPlan, computed once. A prepared statement's generic plan
# would otherwise parse and unaccent the query again for every message walked.
TSQUERY = "(SELECT to_tsquery('simple', talkroom_unaccent(CAST(:tsquery AS text))))"
INDEXED = TSQUERY.replace(":tsquery", ":indexed")
# Messages walked newest first before the index is asked. The walk costs ~1-2 µs a
# message; what it leaves to the index matched under 1 in WINDOW / limit messages.
WINDOW = 5000
FURTHER = 5  # windows walked on at most, when the first found some matches
COMMON = 100  # a word in more than 1 in COMMON messages walked is not asked of the index
MESSAGES = Message.__table__


class PostgresIndex:
    def __init__(self, window: int = WINDOW) -> None:
        self.window = window  # messages walked before the index is asked

    def add(self, conn: Connection, messages: Sequence[tuple[int, str]]) -> None:
        return None

    def update(self, conn: Connection, message_id: int, old_text: str) -> None:
        return None

    def remove(self, conn: Connection, message_id: int, old_text: str) -> None:
        return None

    async def expand(self, session: AsyncSession, parsed: Parsed) -> None:
        return None  # a GIN prefix match reads only the matching entries

    async def find(
        self,
        session: AsyncSession,
        query: Select[Any],
        parsed: Parsed,
        before: int | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        tsquery = to_tsquery(parsed)
        # The window's lowest id, from the newest: ids have gaps (a rolled back
        # insert), so it may hold fewer messages, never more. (OFFSET WINDOW on
        # the primary key visits every row it skips: 7-50 ms here.)
        window = select(func.max(MESSAGES.c.id))
        if before is not None:
            window = window.where(MESSAGES.c.id < before)
        newest = await session.scalar(window)
        if newest is None:
            return []
        end = newest + 1
        start = max(newest - self.window + 1, 0)
        rows = await self._walk(session, query, tsquery, start, end, limit)
        if rows and len(rows) < limit and start > 0:
            # Found some, not a page: walk on as far as the rate so far says the
            # page needs, if that is not much further. Several words each in a few
            # per cent of messages cost the index more (each one's every match).
            needed = (limit - len(rows)) * (end - start) * 3 // (2 * len(rows))
            if needed <= FURTHER * self.window:
                end, start = start, max(start - needed, 0)
                rows += await self._walk(session, query, tsquery, start, end, limit - len(rows))
        if len(rows) == limit or start == 0:
            return rows
        # The index, for what is older than the window (and so below ``before``).
        # ``id + 0``: no primary key order or range for the planner to go back to
        # (a prepared statement's generic plan took "id < $1" for a third of the
        # table and ANDed a bitmap of a million rows with the index's dozen).
        indexed = await self._rarest(session, parsed, start, end)
        # Its own bind name: two text() clauses binding one name share one value.
        match = text(f"{COLUMN} @@ {INDEXED}").bindparams(indexed=indexed)
        older = query.where(match, MESSAGES.c.id + 0 < start)
        if indexed != tsquery:
            walk = text(f"ts_match_vq({COLUMN}, {TSQUERY})").bindparams(tsquery=tsquery)
            older = older.where(walk)
        older = older.order_by((MESSAGES.c.id + 0).desc()).limit(limit - len(rows))
        return rows + list((await session.execute(older)).all())

    async def _rarest(self, session: AsyncSession, parsed: Parsed, start: int, end: int) -> str:
        """The tsquery to ask the index, for several words: only those that were
        rare in the last walk (the rarest one if none was), the rest checked on
        the rows it finds. A prefix in many messages costs the index every match
        ("lugudi:*" in 58 % of 1M: ~80 ms) even beside a rare word."""
        terms = [Parsed(words=[w]) for w in dict.fromkeys(parsed.words)]
        terms += [Parsed(phrases=[p]) for p in parsed.phrases]
        if len(terms) < 2:
            return to_tsquery(parsed)
        counts = [
            func.count().filter(  # each term's matches in what was walked
                text(f"ts_match_vq({COLUMN}, {TSQUERY.replace(':tsquery', f':t{n}')})")
            )
            for n in range(len(terms))
        ]
        seen = (
            await session.execute(
                select(*counts).where(MESSAGES.c.id >= start, MESSAGES.c.id < end),
                {f"t{n}": to_tsquery(term) for n, term in enumerate(terms)},
            )
        ).one()
        counts_seen = list(seen)
        common = (end - start) // COMMON
        rare = [t for t, count in zip(terms, counts_seen, strict=True) if count <= common]
        if not rare:
            rare = [terms[counts_seen.index(min(counts_seen))]]
        return " & ".join(to_tsquery(term) for term in rare)

    async def _walk(
        self,
        session: AsyncSession,
        query: Select[Any],
        tsquery: str,
        start: int,
        end: int,
        limit: int,
    ) -> list[Row[Any]]:
        """The newest matches with ids in [start, end), by walking them."""
        walk = text(f"ts_match_vq({COLUMN}, {TSQUERY})").bindparams(tsquery=tsquery)
        recent = (
            query.where(walk, MESSAGES.c.id >= start, MESSAGES.c.id < end)
            .order_by(MESSAGES.c.id.desc())
            .limit(limit)
        )
        return list((await session.execute(recent)).all())
