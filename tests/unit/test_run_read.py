"""Database.run_read: a synchronous read (on SQLite in a reader thread, one hop) that
sees what was committed, hands back loaded rows, and gives its connection back
whatever happens, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from app.db import SQLITE_READ_THREADS, Database
from app.models import Room


def add_room(conn: Connection, name: str) -> None:
    conn.execute(insert(Room).values(name=name))


def room_named(session: Session, name: str, fail: bool = False) -> tuple[Room | None, str]:
    room = session.scalar(select(Room).where(Room.name == name))
    if fail:
        raise LookupError(name)
    return room, threading.current_thread().name


async def test_sees_what_was_committed_and_hands_back_loaded_rows(db: Database) -> None:
    assert (await db.run_read(room_named, "alpha"))[0] is None
    await db.run_write(add_room, "alpha")
    room, thread = await db.run_read(room_named, "alpha")
    assert room is not None and room.name == "alpha" and room.id > 0  # detached, loaded
    if db.engine.url.drivername.startswith("sqlite"):
        assert thread.startswith("sqlite-reader")
    else:
        assert thread == threading.current_thread().name


async def test_an_error_reaches_the_caller_and_gives_the_connection_back(db: Database) -> None:
    await db.run_write(add_room, "beta")
    for _ in range(SQLITE_READ_THREADS * 3):
        with pytest.raises(LookupError):
            await db.run_read(room_named, "beta", fail=True)
    # A connection kept by a failed read would leave the pool empty: this would wait.
    room, _ = await asyncio.wait_for(db.run_read(room_named, "beta"), 10)
    assert room is not None and room.name == "beta"


async def test_many_at_once_all_answer(db: Database) -> None:
    await db.run_write(add_room, "gamma")
    found = await asyncio.wait_for(
        asyncio.gather(*(db.run_read(room_named, "gamma") for _ in range(50))), 20
    )
    assert {room.name for room, _ in found if room is not None} == {"gamma"}
    assert len(found) == 50
