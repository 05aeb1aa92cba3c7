"""A window's reactions from a real SQLite database: looked up only for messages
that changed since they were made (a reaction moves the message's rev)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from app.backends.memory import MemoryBroker, MemoryPresence, MemoryRateLimiter
from app.chat import Chat
from app.db import Database, upgrade_database
from app.models import User
from app.rooms import create_room
from app.settings import Settings


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    settings = Settings(data_dir=tmp_path, message_rate=0)
    await asyncio.to_thread(upgrade_database, settings)
    db = Database(settings)
    yield Chat(
        settings=settings,
        db=db,
        broker=MemoryBroker(),
        presence=MemoryPresence(),
        limiter=MemoryRateLimiter(0, 10),
    )
    await db.close()


def reaction_queries(db: Database) -> list[str]:
    seen: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM message_reactions" in statement:
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", executed)
    return seen


async def test_unchanged_messages_cost_no_reaction_query_and_reacted_ones_show_them(
    chat: Chat,
) -> None:
    room = (await create_room(chat.db, name="reacting")).id
    async with chat.db.write() as session:
        alice = User(username="alice", username_key="alice", password_hash="x")
        session.add(alice)
    posted = [await chat.post(room_id=room, author=alice, text=f"m{i}") for i in range(3)]
    seen = reaction_queries(chat.db)
    window = await chat.window(room, limit=10)
    assert [m.reactions for m in window] == [(), (), ()]
    assert seen == []
    await chat.react(room_id=room, message_id=posted[1].id, user=alice, emoji="👍", on=True)
    seen.clear()  # the reaction's own reads
    window = await chat.window(room, limit=10)
    assert len(seen) == 1
    assert [m.reactions for m in window] == [(), (("👍", ("alice",), 1),), ()]
