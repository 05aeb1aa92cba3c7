"""A connection's direct-write path: a ready-made frame goes straight to the socket
only when it is next and nothing waits before it; otherwise the outbox takes it."""

from __future__ import annotations

import asyncio

from fakes import make, stored

from app.events import Event
from app.frames import text_frame


def frames(*seqs: int) -> bytes:
    return b"".join(text_frame(f"<m {seq}>".encode()) for seq in seqs)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_next_messages_are_written_once_and_move_the_cursor() -> None:
    conn, socket = make({}, cursor=3)
    conn.start()
    await settle()  # the catch-up found nothing: the sender is done
    assert conn.write_now(4, 5, frames(4, 5)) is True
    assert socket.writes == [frames(4, 5)] and socket.sent == ["<m 4>", "<m 5>"]
    assert conn.cursor == 5
    await conn.stop()


async def test_a_socket_that_refuses_the_frame_leaves_it_to_the_outbox() -> None:
    conn, socket = make({}, cursor=3)
    conn.start()
    await settle()
    socket.full = True
    assert conn.write_now(4, 4, frames(4)) is False
    assert conn.cursor == 3 and socket.writes == []
    await conn.stop()


async def test_a_connection_that_is_behind_is_not_written_to() -> None:
    conn, socket = make(stored(range(1, 5)), cursor=1)
    assert conn.write_now(2, 2, frames(2)) is False  # not started: its catch-up comes first
    conn.start()
    await settle()
    assert conn.cursor == 4
    assert conn.write_now(6, 6, frames(6)) is False  # 5 is missing: a repair must run
    conn.offer(Event("notice", "<p>hi</p>"))  # busy: a sender runs for the outbox
    assert conn.write_now(5, 5, frames(5)) is False
    assert socket.writes == [] and conn.cursor == 4
    await settle()
    assert socket.sent == ["<m 2><m 3><m 4>", "<p>hi</p>"]
    await conn.stop()


async def test_a_connection_whose_catch_up_runs_is_not_written_to() -> None:
    """Its outbox is empty and the message is next to its cursor, but the catch-up in
    flight will send that message too: a direct write now would show it twice."""
    conn, socket = make({}, cursor=3)
    answer = asyncio.Event()

    async def slow_catch_up(
        room_id: int, after: int, need: int = 0, since: float = 0.0
    ) -> tuple[str, int] | None:
        await answer.wait()
        return "<m 4>", 4

    conn._catch_up = slow_catch_up
    conn.start()
    await settle()  # the sender waits on the catch-up; nothing is queued
    assert conn.write_now(4, 4, frames(4)) is False
    answer.set()
    await settle()
    assert socket.writes == [] and socket.sent == ["<m 4>"] and conn.cursor == 4
    await conn.stop()
