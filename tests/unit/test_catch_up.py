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
from app.errors import Conflict, MessageNotFound, NotAllowed
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


async def test_catch_up_is_by_state_each_changed_message_once_in_its_current_state(
    chat: Chat,
) -> None:
    room = (await create_room(chat.db, name="by-state")).id
    alice = await author(chat)
    first, second, third = [
        await chat.post(room_id=room, author=alice, text=f"m{i}") for i in range(3)
    ]
    # seqs 4 and 5 edit the first message, 6 deletes the second.
    await chat.edit(room_id=room, message_id=first.id, editor=alice, text="once")
    await chat.edit(room_id=room, message_id=first.id, editor=alice, text="twice")
    await chat.delete(room_id=room, message_id=second.id, deleter=alice)
    assert await chat.last_seq(room) == 6

    html, cursor = await chat.catch_up(room, 3) or ("", 0)
    assert cursor == 6
    # Held messages are swapped in place (their element alone), nothing appended.
    assert [int(i) for i, _ in MESSAGE_RE.findall(html)] == [first.id, second.id]
    assert 'hx-swap-oob="beforeend"' not in html
    assert "twice" in html and "once" not in html and "m1" not in html
    assert 'data-edited="' in html and "data-deleted" in html
    assert html.endswith('<span id="room-seq" data-seq="6" hidden></span>')

    # From seq 2 the third message is new: appended in seq order, after the swaps.
    html, cursor = await chat.catch_up(room, 2) or ("", 0)
    swapped, _, appended = html.partition('<div id="messages" hx-swap-oob="beforeend">')
    assert [int(i) for i, _ in MESSAGE_RE.findall(swapped)] == [first.id, second.id]
    assert [int(i) for i, _ in MESSAGE_RE.findall(appended)] == [third.id]
    assert cursor == 6
    assert await chat.catch_up(room, 6) is None


async def test_a_refused_change_takes_no_seq(chat: Chat) -> None:
    room = (await create_room(chat.db, name="refused")).id
    other_room = (await create_room(chat.db, name="elsewhere")).id
    alice = await author(chat)
    async with chat.db.write() as session:
        bob = User(username="bob", username_key="bob", password_hash="x")
        session.add(bob)
    message = await chat.post(room_id=room, author=alice, text="mine")
    with pytest.raises(NotAllowed):
        await chat.edit(room_id=room, message_id=message.id, editor=bob, text="theirs")
    with pytest.raises(NotAllowed):
        await chat.delete(room_id=room, message_id=message.id, deleter=bob)
    with pytest.raises(MessageNotFound):
        await chat.edit(room_id=other_room, message_id=message.id, editor=alice, text="x")
    await chat.delete(room_id=room, message_id=message.id, deleter=alice)
    with pytest.raises(Conflict):
        await chat.edit(room_id=room, message_id=message.id, editor=alice, text="back")
    await chat.delete(room_id=room, message_id=message.id, deleter=alice)  # nothing to do
    assert (await chat.last_seq(room), await chat.last_seq(other_room)) == (2, 0)


async def test_a_deleted_message_leaves_the_search_index_consistent(chat: Chat) -> None:
    from sqlalchemy import text

    from app.rooms import delete_room

    room = (await create_room(chat.db, name="tombstones")).id
    alice = await author(chat)
    kept = await chat.post(room_id=room, author=alice, text="findable words")
    gone = await chat.post(room_id=room, author=alice, text="secret words")
    await chat.edit(room_id=room, message_id=kept.id, editor=alice, text="findable again")
    await chat.delete(room_id=room, message_id=gone.id, deleter=alice)
    match = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q ORDER BY rowid")
    async with chat.db.read() as session:
        assert list(await session.scalars(match, {"q": "words"})) == []
        assert list(await session.scalars(match, {"q": "findable"})) == [kept.id]
    # The room's messages go by cascade, tombstone and all, through the index's
    # trigger: it must not find the index out of step (SQLite reports corruption).
    await delete_room(chat.db, chat.broker, room)
    async with chat.db.read() as session:
        check = "INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)"
        await session.execute(text(check))
        assert list(await session.scalars(match, {"q": "findable"})) == []


async def test_a_socket_subscribed_after_a_query_began_gets_a_query_of_its_own(
    chat: Chat,
) -> None:
    """A query in flight may have read the room before a message committed; a socket
    that subscribed after that message was published never gets it live, so it must
    not share that query (issue 12: a page connecting while a message is in flight)."""
    room = (await create_room(chat.db, name="joining")).id
    alice = await author(chat)
    await chat.post(room_id=room, author=alice, text="m0")
    loop = asyncio.get_running_loop()
    before = queries()
    early = asyncio.ensure_future(chat.catch_up(room, 0, 0, loop.time()))
    await asyncio.sleep(0)  # in flight now
    subscribed = loop.time()
    sharing = asyncio.ensure_future(chat.catch_up(room, 0, 0, subscribed - 1))
    joined = asyncio.ensure_future(chat.catch_up(room, 0, 0, subscribed + 1e-6))
    results = await asyncio.gather(early, sharing, joined)
    # The one that subscribed before the query began shares it; the later one does not.
    assert queries() - before == 2
    assert [end for _, end in results] == [1, 1, 1]  # type: ignore[misc]
