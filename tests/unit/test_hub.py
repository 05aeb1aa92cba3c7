"""Per-connection delivery: seq order, no duplicates, gaps repaired from the source."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fakes import make, stored
from starlette.websockets import WebSocketDisconnect

from app.backends.memory import MemoryBroker
from app.connection import PRESENCE_LINES
from app.events import LOBBY, MEMBERS, Event
from app.hub import PRESENCE_BATCH, PRESENCE_GATHER, REORDER_WAIT, Hub


def message(seq: int) -> Event:
    return Event("message", f"<m {seq}>", seq)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_in_order_events_are_sent_once() -> None:
    conn, socket = make({})
    conn.start()
    for seq in (1, 2, 2, 3, 1):
        conn.offer(message(seq))
    await settle()
    assert socket.sent == ["<m 1>", "<m 2>", "<m 3>"]
    await conn.stop()


async def test_a_gap_is_repaired_before_the_next_event() -> None:
    conn, socket = make(stored(range(1, 6)), cursor=1)
    conn.start()
    conn.offer(message(4))  # 2 and 3 were lost by pub/sub
    conn.offer(message(2))  # late duplicate
    conn.offer(message(5))
    await settle()
    assert "".join(socket.sent) == "<m 2><m 3><m 4><m 5>"
    assert conn.cursor == 5
    await conn.stop()


async def test_a_gap_repair_reaches_the_event_that_showed_the_gap() -> None:
    """A catch-up may answer from a snapshot older than the event (a query shared
    with another socket); the connection says which seq it needs, or it would send
    the event after the snapshot's end and skip what lies between for ever."""
    history = stored(range(2, 6))
    snapshot_end = 3  # what a query begun before seqs 4 and 5 committed would see
    conn, socket = make({}, cursor=1)
    asked: list[int] = []

    async def catch_up(
        room_id: int, after: int, need: int = 0, since: float = 0.0
    ) -> tuple[str, int] | None:
        asked.append(need)
        seen = [s for s in sorted(history) if after < s <= max(snapshot_end, need)]
        return ("".join(history[s] for s in seen), seen[-1]) if seen else None

    conn._catch_up = catch_up
    conn.start()
    await settle()
    conn.offer(message(5))
    await settle()
    assert "".join(socket.sent) == "<m 2><m 3><m 4><m 5>"
    assert asked[-1] == 5
    await conn.stop()


async def test_catch_up_first_then_live_without_doubles() -> None:
    history = stored(range(1, 8))
    conn, socket = make(history, cursor=3)
    conn.offer(message(6))  # arrived while connecting
    conn.offer(message(7))
    conn.start()
    await settle()
    assert "".join(socket.sent) == "<m 4><m 5><m 6><m 7>"
    await conn.stop()


async def test_resync_pulls_whatever_was_missed() -> None:
    history = stored(range(1, 3))
    conn, socket = make(history, cursor=2)
    conn.start()
    history.update(stored(range(3, 5)))
    conn.offer(Event("resync"))
    await settle()
    assert "".join(socket.sent) == "<m 3><m 4>"
    await conn.stop()


async def test_full_outbox_closes_with_1013() -> None:
    conn, socket = make({}, outbox=3)  # not started: nothing drains
    for seq in range(1, 6):
        conn.offer(message(seq))
    await settle()
    assert socket.closed == 1013


async def test_notices_pass_through_unordered() -> None:
    conn, socket = make({})
    conn.start()
    conn.offer(Event("notice", "<p>hi</p>"))
    await settle()
    assert socket.sent == ["<p>hi</p>"]
    await conn.stop()


async def test_a_storm_of_presence_is_one_frame_and_never_1013() -> None:
    conn, socket = make({}, outbox=3)  # not started: nothing drains yet
    for n in range(500):
        conn.offer_presence([f"<p>{n} joined</p>"], {MEMBERS: f"<ul>{n}</ul>"})
    await settle()
    assert socket.closed is None
    conn.start()
    await settle()
    frame = socket.sent[0]
    assert len(socket.sent) == 1
    assert frame.endswith("<p>499 joined</p><ul>499</ul>")  # the newest member list only
    assert frame.count("joined") == PRESENCE_LINES
    await conn.stop()


async def test_messages_still_fill_the_outbox_beside_presence() -> None:
    conn, socket = make({}, outbox=3)
    conn.offer_presence(states={MEMBERS: "<ul></ul>"})
    for seq in range(1, 5):
        conn.offer(message(seq))
    await settle()
    assert socket.closed == 1013


async def test_the_hub_batches_presence_per_room_and_the_lobby() -> None:
    hub = Hub(MemoryBroker())
    here, here_socket = make({})
    elsewhere, elsewhere_socket = make({})
    elsewhere.room_id = 2
    for conn in (here, elsewhere):
        await hub.join(conn)
        conn.start()
    for name in ("a", "b", "c"):
        hub.dispatch("room:1", Event("presence", f"<p>{name}</p>").encode())
        hub.dispatch("room:1", Event("state", f"<ul>{name}</ul>", MEMBERS).encode())
        hub.dispatch(LOBBY, Event("state", f"<b>1:{name}</b>", 1).encode())
    await settle()
    assert here_socket.sent == elsewhere_socket.sent == []  # gathered, not yet sent
    await asyncio.sleep(PRESENCE_GATHER * 3)  # the first batch goes out at once
    assert here_socket.sent == ["<p>a</p><p>b</p><p>c</p><ul>c</ul><b>1:c</b>"]
    assert elsewhere_socket.sent == ["<b>1:c</b>"]
    hub.dispatch("room:1", Event("presence", "<p>d</p>").encode())
    await asyncio.sleep(PRESENCE_GATHER * 3)
    assert len(here_socket.sent) == 1  # the next waits out PRESENCE_BATCH
    await asyncio.sleep(PRESENCE_BATCH)
    assert here_socket.sent[1] == "<p>d</p>"
    for conn in (here, elsewhere):
        await conn.stop()
    await hub.stop()


async def test_a_client_gone_mid_write_is_no_failure(caplog: pytest.LogCaptureFixture) -> None:
    conn, socket = make({})

    async def gone(text: str) -> None:
        raise WebSocketDisconnect(1006)

    socket.send_text = gone  # type: ignore[method-assign]
    conn.start()
    conn.offer(Event("notice", "<p>hi</p>"))
    await settle()
    assert socket.closed is None  # no 1011 for a socket that is gone already
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_message_that_overtook_the_one_before_waits_for_it() -> None:
    hub = Hub(MemoryBroker())
    conn, socket = make({}, cursor=3)  # the database has nothing: a repair would send nothing
    await hub.join(conn)
    conn.start()
    await settle()
    hub.dispatch("room:1", message(5).encode())
    await settle()
    assert socket.sent == []  # held back for 4
    hub.dispatch("room:1", message(4).encode())
    await settle()
    assert socket.sent == ["<m 4>", "<m 5>"]
    hub.dispatch("room:1", message(7).encode())  # 6 never comes: the connection repairs
    await asyncio.sleep(REORDER_WAIT * 2)
    assert socket.sent == ["<m 4>", "<m 5>", "<m 7>"]
    await conn.stop()
    await hub.stop()


def senders() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("sender-")]


async def test_a_sender_runs_only_while_there_is_something_to_send() -> None:
    conn, socket = make(stored(range(1, 3)))
    conn.offer(message(3))  # before start: waits for the catch-up
    assert senders() == []
    conn.start()
    assert len(senders()) == 1
    await settle()
    assert "".join(socket.sent) == "<m 1><m 2><m 3>"
    assert senders() == []  # idle: no task
    socket.full = True  # the direct write is refused: the outbox takes the message
    assert conn.write_now(4, 4, b"frame") is False
    conn.offer(message(4))
    await settle()
    assert socket.sent[-1] == "<m 4>" and senders() == []
    conn.close(1000)
    await settle()
    assert socket.closed == 1000 and senders() == []
    await conn.stop()
