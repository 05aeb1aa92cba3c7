"""Database.run_write: a synchronous transaction (on SQLite in a thread of its own)
that commits on success and rolls back on error, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.models import Room


def add_room(conn: Connection, name: str, fail: bool = False) -> str:
    conn.execute(insert(Room).values(name=name))
    if fail:
        raise RuntimeError("after the insert")
    return threading.current_thread().name


async def rooms(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(Room.name).order_by(Room.name)))


async def test_commits_and_answers(db: Database) -> None:
    thread = await db.run_write(add_room, "alpha")
    assert await rooms(db) == ["alpha"]
    # SQLite's transaction runs in the writer thread, PostgreSQL's in this one.
    if db.engine.url.drivername.startswith("sqlite"):
        assert thread.startswith("sqlite-writer")
    else:
        assert thread == threading.current_thread().name


async def test_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await db.run_write(add_room, "beta", fail=True)
    assert await rooms(db) == []
    # The database's own errors keep their type (the writer catches IntegrityError).
    await db.run_write(add_room, "gamma")
    with pytest.raises(IntegrityError):
        await db.run_write(add_room, "gamma")
    assert await rooms(db) == ["gamma"]


async def test_many_at_once_all_commit(db: Database) -> None:
    await asyncio.gather(*(db.run_write(add_room, f"r{i:02d}") for i in range(20)))
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Room)) == 20
