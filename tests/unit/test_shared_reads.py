"""Database.shared_reads against a real SQLite database: one connection for a
request's reads, given back at a write, never shared with another task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from app.db import Database, upgrade_database
from app.models import Room
from app.rooms import create_room
from app.settings import Settings


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = Settings(data_dir=tmp_path)
    await asyncio.to_thread(upgrade_database, settings)
    db = Database(settings)
    yield db
    await db.close()


def checkouts(db: Database) -> list[int]:
    """One entry per connection checkout from the pool, from now on."""
    seen: list[int] = []

    def checked_out(*_: Any) -> None:
        seen.append(1)

    event.listen(db.engine.sync_engine, "checkout", checked_out)
    return seen


async def room_names(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(Room.name).order_by(Room.name)))


def begins(db: Database) -> list[str]:
    """Every BEGIN the engine sends from now on."""
    sent: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            sent.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", executed)
    return sent


async def test_reads_in_a_scope_share_one_connection(db: Database) -> None:
    await create_room(db, name="one")
    seen, sent = checkouts(db), begins(db)
    async with db.shared_reads():
        for _ in range(3):
            assert await room_names(db) == ["one"]
    assert len(seen) == 1
    assert sent == []  # each shared read is its own snapshot: no BEGIN's round trip
    for _ in range(3):
        await room_names(db)
    assert len(seen) == 4  # outside a scope: one each, as before


async def test_a_write_ends_the_shared_session_and_later_reads_see_it(db: Database) -> None:
    await create_room(db, name="one")
    async with db.shared_reads() as shared:
        assert await room_names(db) == ["one"]
        # The write gives the shared connection back before it takes its own.
        async with db.write() as session:
            assert shared.session is not None and not shared.session.in_transaction()
            await session.execute(
                text(
                    "INSERT INTO rooms (name, description, created_at,"
                    " last_seq, kind) VALUES ('two', '', '2026-01-01',"
                    " 0, 'public')"
                )
            )
        assert await room_names(db) == ["one", "two"]


async def test_another_task_never_shares_the_session(db: Database) -> None:
    await create_room(db, name="one")
    async with db.shared_reads() as shared:
        await room_names(db)
        mine = shared.session

        async def elsewhere() -> Any:
            async with db.read() as session:
                await session.execute(select(Room.id))
                return session

        # A task started inside the scope copies its context, and must not use it.
        theirs = await asyncio.create_task(elsewhere())
        assert theirs is not mine


async def test_writer_waiting_in_another_task_is_not_starved(tmp_path: Path) -> None:
    """Every pooled connection held by a request scope that waits for another task's
    write would wait for ever; unshared() gives the request's back first."""
    settings = Settings(data_dir=tmp_path)
    await asyncio.to_thread(upgrade_database, settings)
    db = Database(settings)
    db.engine.pool._timeout = 2  # type: ignore[attr-defined]  # fail fast, not in 30 s
    try:
        await create_room(db, name="one")
        size = db.engine.pool.size() + db.engine.pool._max_overflow  # type: ignore[attr-defined]
        started = asyncio.Event()
        go = asyncio.Event()
        holding = 0

        async def writer() -> None:
            await go.wait()
            async with db.write() as session:
                await session.execute(text("UPDATE rooms SET last_seq = last_seq + 1"))

        async def request(task: asyncio.Task[None]) -> None:
            nonlocal holding
            async with db.shared_reads():
                await room_names(db)
                holding += 1
                if holding == size:
                    started.set()
                async with db.unshared():
                    await room_names(db)
                    await asyncio.shield(task)

        task = asyncio.create_task(writer())
        requests = [asyncio.create_task(request(task)) for _ in range(size)]
        await asyncio.wait_for(started.wait(), 30)
        go.set()
        await asyncio.wait_for(asyncio.gather(*requests), 30)
        assert task.done() and task.exception() is None
    finally:
        await db.close()
