"""MessageWriter against a real SQLite database: batching, and its one-by-one fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from app.db import Database, upgrade_database
from app.models import Message, User
from app.rooms import create_room
from app.settings import Settings
from app.writer import MessageWriter


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = Settings(data_dir=tmp_path)
    await asyncio.to_thread(upgrade_database, settings)
    db = Database(settings)
    yield db
    await db.close()


def inserts(db: Database) -> list[int]:
    """The row counts of each INSERT into messages the engine runs from now on."""
    counts: list[int] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO messages "):  # not messages_fts
            counts.append(statement.count("?, ?, ?, ?, ?, ?"))

    event.listen(db.write_engine, "before_cursor_execute", seen)
    return counts


def held(writer: MessageWriter) -> asyncio.Event:
    """Hold the writer's first transaction until the event is set, so that what is
    posted meanwhile is known to arrive while it runs (no timing involved)."""
    gate, save, calls = asyncio.Event(), writer._save, []

    async def gated(batch: Any) -> None:
        calls.append(batch)
        if len(calls) == 1:
            await gate.wait()
        await save(batch)

    writer._save = gated  # type: ignore[method-assign]
    return gate


def post(
    writer: MessageWriter, room: int, author: User, text: str, client_id: str | None = None
) -> asyncio.Future[Message]:
    return writer.queue(room_id=room, author=author, text=text, client_id=client_id)


async def alice(db: Database) -> User:
    async with db.write() as session:
        user = User(username="alice", username_key="alice", password_hash="x")
        session.add(user)
    return user


async def test_posts_made_while_a_transaction_runs_go_in_one_batch(db: Database) -> None:
    room, author = (await create_room(db, name="batched")).id, await alice(db)
    writer = MessageWriter(db)
    gate, counts = held(writer), inserts(db)
    first = writer.queue(room_id=room, author=author, text="0", client_id=None)
    await asyncio.sleep(0)  # the writer has taken the first post and is in its transaction
    rest = [post(writer, room, author, str(i)) for i in range(1, 5)]
    await asyncio.sleep(0)
    gate.set()
    saved = await asyncio.gather(first, *rest)
    assert counts == [1, 4]  # one alone, then everything that waited, in one INSERT
    assert [m.seq for m in saved] == [1, 2, 3, 4, 5]
    assert [m.text for m in saved] == ["0", "1", "2", "3", "4"]


async def test_a_bad_row_fails_alone_and_the_rest_of_its_batch_is_saved(db: Database) -> None:
    room, author = (await create_room(db, name="fallback")).id, await alice(db)
    # An author removed while their message waited: its row breaks a foreign key.
    gone = User(id=author.id + 1000, username="gone", username_key="gone", password_hash="x")
    writer = MessageWriter(db)
    await writer.queue(room_id=room, author=author, text="first", client_id=None)
    gate, counts = held(writer), inserts(db)
    first = writer.queue(room_id=room, author=author, text="a", client_id=None)
    await asyncio.sleep(0)
    batch = [
        post(writer, room, who, text) for who, text in ((author, "b"), (gone, "x"), (author, "c"))
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert counts == [1, 3, 1, 1, 1]  # the batch failed whole, then went one by one
    assert isinstance(results[2], IntegrityError)
    assert [m.text for m in results if isinstance(m, Message)] == ["a", "b", "c"]
    async with db.read() as session:
        texts = list(await session.scalars(select(Message.text).order_by(Message.seq)))
        assert await session.scalar(select(func.count()).select_from(Message)) == 4
    assert texts == ["first", "a", "b", "c"]


async def test_a_client_id_sent_again_is_found_in_the_batch_not_saved_twice(
    db: Database,
) -> None:
    """A page resends what it had pending when it reconnects: a client id saved
    before, or twice in one batch, is answered Resent, and the rest of the batch is
    saved in the same transaction (no failed batch, no seq taken for it)."""
    room, author = (await create_room(db, name="resent")).id, await alice(db)
    writer = MessageWriter(db)
    await writer.queue(room_id=room, author=author, text="first", client_id="dup")
    gate, counts = held(writer), inserts(db)
    first = writer.queue(room_id=room, author=author, text="a", client_id=None)
    await asyncio.sleep(0)
    sent = (("b", "dup"), ("c", "new"), ("d", "new"), ("e", None))
    batch = [post(writer, room, author, text, client_id) for text, client_id in sent]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert counts == [1, 2]
    assert [type(r).__name__ for r in results] == [
        "Message",
        "Resent",
        "Message",
        "Resent",
        "Message",
    ]
    assert [(m.text, m.seq) for m in results if isinstance(m, Message)] == [
        ("a", 2),
        ("c", 3),
        ("e", 4),
    ]
