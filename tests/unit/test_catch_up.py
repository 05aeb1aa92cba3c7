"""Catch-up from a real SQLite database: what a socket that fell behind is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from support import MESSAGE_RE

from app.backends.memory import MemoryBroker, MemoryPresence, MemoryRateLimiter
from app.chat import Chat
from app.db import Database, upgrade_database
from app.models import User
from app.rooms import create_room
from app.settings import Settings


def queries() -> float:
    return REGISTRY.get_sample_value("talkroom_catch_up_queries_total") or 0.0


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


async def author(chat: Chat) -> User:
    async with chat.db.write() as session:
        user = User(username="alice", username_key="alice", password_hash="x")
        session.add(user)
    return user


async def test_askers_from_one_seq_share_a_query_only_when_it_reaches_their_need(
    chat: Chat,
) -> None:
    room = (await create_room(chat.db, name="catching-up")).id
    alice = await author(chat)
    for i in range(3):
        await chat.post(room_id=room, author=alice, text=f"m{i}")
    before = queries()
    # Two sockets that saw seq 2 arrive after seq 0 ask together: one query.
    first = asyncio.ensure_future(chat.catch_up(room, 0, 2))
    second = asyncio.ensure_future(chat.catch_up(room, 0, 2))
    # A third saw seq 3: a query already in flight for seq 2 may have begun before 3
    # committed and end below it, so it gets its own.
    third = asyncio.ensure_future(chat.catch_up(room, 0, 3))
    results = await asyncio.gather(first, second, third)
    assert queries() - before == 2
    for html, end in results:  # type: ignore[misc]
        assert end == 3
        assert [int(seq) for _, seq in MESSAGE_RE.findall(html)] == [1, 2, 3]
    # Nothing is left in flight to be shared by a later asker.
    assert chat.windows._catching_up == {}
    assert await chat.catch_up(room, 3, 3) is None
