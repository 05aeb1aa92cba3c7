"""Rebuilding the search index: ``talkroom reindex``.

SQLite (FTS5): in batches, each its own short write transaction, so the app keeps
saving messages meanwhile; where it got to is kept in ``search_reindex``, so an
interrupted run resumes. It indexes the messages that existed when it began (ids up
to ``upto``); newer ones the writer indexes as usual. Until it ends, search finds
the messages done so far and every new one.

PostgreSQL: the index is an expression index the database maintains itself, so a
rebuild is one ``REINDEX INDEX CONCURRENTLY`` (writes go on meanwhile), its progress
read from ``pg_stat_progress_create_index``. It cannot be resumed half-way: an
interrupted run leaves an invalid copy of the index, which the next run drops
before it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from app.db import Database
from app.search import postgres, sqlite

BATCH = 5000  # messages per transaction (SQLite)

# (done, total, what): called after each step.
Progress = Callable[[int, int, str], None]


@dataclass
class Outcome:
    messages: int
    resumed: bool


async def reindex(
    db: Database, progress: Progress, *, batch: int = BATCH, restart: bool = False
) -> Outcome:
    if db.engine.dialect.name == "sqlite":
        return await _sqlite(db, progress, batch=batch, restart=restart)
    return await _postgres(db, progress)


STATE = text("SELECT upto, done FROM search_reindex WHERE id = 1")
COUNT_UPTO = text("SELECT count(*) FROM messages WHERE id <= :upto")
COUNT_DONE = text("SELECT count(*) FROM messages WHERE id <= :done")
BATCH_END = text(
    "SELECT max(id), count(*) FROM (SELECT id FROM messages "
    "WHERE id > :done AND id <= :upto ORDER BY id LIMIT :batch) AS next_batch"
)
ADD_BATCH = text(
    f"INSERT INTO {sqlite.TABLE}(rowid, text) SELECT id, text FROM messages "
    "WHERE id > :done AND id <= :end"
)


async def _sqlite(db: Database, progress: Progress, *, batch: int, restart: bool) -> Outcome:
    async with db.write() as session:
        state = (await session.execute(STATE)).first()
        resumed = state is not None and not restart
        if not resumed:
            # From empty: the rows pending (in (done, upto]) are left alone by the
            # delete trigger and the edit hooks, so nothing is forgotten twice.
            await session.execute(
                text(f"INSERT INTO {sqlite.TABLE}({sqlite.TABLE}) VALUES('delete-all')")
            )
            upto = (await session.scalar(text("SELECT max(id) FROM messages"))) or 0
            await session.execute(text("DELETE FROM search_reindex"))
            await session.execute(
                text("INSERT INTO search_reindex (id, upto, done) VALUES (1, :upto, 0)"),
                {"upto": upto},
            )
            state = (await session.execute(STATE)).first()
    assert state is not None
    upto, done = state
    async with db.read() as session:
        total = await session.scalar(COUNT_UPTO, {"upto": upto}) or 0
        count = await session.scalar(COUNT_DONE, {"done": done}) or 0
    progress(count, total, "messages")
    while True:
        async with db.write() as session:
            end, rows = (
                await session.execute(BATCH_END, {"done": done, "upto": upto, "batch": batch})
            ).one()
            if not rows:
                # Every term indexed, as FTS5 itself cut them (the writer's own
                # list may miss one its tokenizer reads otherwise).
                await session.execute(text(sqlite.VOCABULARY))
                await session.execute(text(sqlite.TERMS_FROM_VOCABULARY))
                await session.execute(text("DELETE FROM search_reindex"))
                break
            await session.execute(ADD_BATCH, {"done": done, "end": end})
            await session.execute(text("UPDATE search_reindex SET done = :end"), {"end": end})
        done, count = end, count + rows
        progress(count, total, "messages")
    return Outcome(count, resumed)


PG_PROGRESS = text(
    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total "
    "FROM pg_stat_progress_create_index WHERE relid = 'messages'::regclass"
)
LEFTOVERS = text(
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE NOT i.indisvalid AND c.relname LIKE :prefix"
)


async def _postgres(db: Database, progress: Progress) -> Outcome:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        leftovers = (await conn.execute(LEFTOVERS, {"prefix": f"{postgres.INDEX}_ccnew%"})).all()
        for (name,) in leftovers:
            await conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
        total = await conn.scalar(text("SELECT count(*) FROM messages")) or 0
        watcher = asyncio.create_task(_watch(db, progress))
        try:
            await conn.execute(text(f"REINDEX INDEX CONCURRENTLY {postgres.INDEX}"))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    progress(total, total, "messages")
    return Outcome(total, bool(leftovers))


async def _watch(db: Database, progress: Progress) -> None:
    """The build's progress as PostgreSQL reports it, twice a second."""
    while True:
        await asyncio.sleep(0.5)
        async with db.read() as session:
            row = (await session.execute(PG_PROGRESS)).first()
        if row is None:
            continue
        phase, blocks_done, blocks_total, tuples_done, tuples_total = row
        if tuples_total:
            progress(tuples_done, tuples_total, phase)
        elif blocks_total:
            progress(blocks_done, blocks_total, f"{phase} (blocks)")
