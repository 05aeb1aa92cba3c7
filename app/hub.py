"""Local connections per room, fan-out through bounded outboxes, ordered delivery.

One hub per process. Its listener pulls events from the broker and drops them
into the outboxes of the local connections they concern; it never waits on a
socket. Each connection (app.connection) drains its own outbox, so a slow
client only slows itself, and is closed with 1013 once its outbox is full.

Presence (who joined, the member list, the online badges) is not queued event by
event: a storm of joins would announce n joins to n sockets, fill every outbox
and drop healthy clients with 1013. The hub sends it at most every
PRESENCE_BATCH seconds (a lone join goes out at once), and each connection holds
at most one pending presence frame in its outbox, whose newest state replaces
older state, so only messages fill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from starlette import status

from app import metrics
from app.backends import RECONNECTED, Broker
from app.connection import Connection
from app.events import LOBBY, RESYNC, USER_PREFIX, Event, room_channel, user_channel
from app.frames import text_frame

logger = logging.getLogger(__name__)

# The room id of lobby sockets (the home page): they get the online badges of every
# room and nothing else. Room ids start at 1.
LOBBY_ROOM = 0
# How long presence changes are gathered before they go out: joins and leaves
# show up this much later, and a storm of them costs a few frames a second.
PRESENCE_BATCH = 0.25
# A join or leave publishes three events (line, member list, badge): a lone one
# waits this long for the other two, to go out as one frame.
PRESENCE_GATHER = 0.01
# How long a message that overtook an earlier one waits for it. Two posts commit
# in seq order but may publish the other way round (and workers race on Redis);
# without this wait every socket in the room would repair from the database.
REORDER_WAIT = 0.05


class RoomOrder:
    """A room's newest fanned-out seq, and messages that arrived ahead of their turn."""

    __slots__ = ("early", "last", "timer")

    def __init__(self) -> None:
        self.last = 0
        self.early: dict[int, Event] = {}
        self.timer: asyncio.TimerHandle | None = None


class Hub:
    """This process's rooms and their local connections."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.rooms: dict[int, set[Connection]] = {}
        # Each user's local connections; the user's channel is subscribed while any is.
        self.users: dict[int, set[Connection]] = {}
        self._listener: asyncio.Task[None] | None = None
        # Presence gathered for the next batch: per room (None: every room, the lobby).
        self._lines: dict[int, list[str]] = {}
        self._states: dict[int | None, dict[int, str]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._flushed_at = float("-inf")
        self._order: dict[int, RoomOrder] = {}
        self._due_messages: dict[int, list[Event]] = {}

    @property
    def connections(self) -> int:
        return sum(len(conns) for conns in self.rooms.values())

    def sockets_of(self, user_id: int) -> int:
        return len(self.users.get(user_id, ()))

    async def start(self) -> None:
        await self.broker.subscribe(LOBBY)
        self._listener = asyncio.create_task(self._listen(), name="hub-listener")

    async def stop(self, code: int = status.WS_1012_SERVICE_RESTART) -> None:
        """Close every local socket (1012 on a restart: clients reconnect and resume)."""
        for conns in self.rooms.values():
            for conn in conns:
                conn.close(code)
        if self._flush:
            self._flush.cancel()
        for order in self._order.values():
            if order.timer:
                order.timer.cancel()
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def join(self, conn: Connection) -> None:
        conns = self.rooms.get(conn.room_id)
        if conns is None:
            conns = self.rooms[conn.room_id] = set()
            if conn.room_id != LOBBY_ROOM:  # the lobby channel is always subscribed
                metrics.ROOMS_SUBSCRIBED.inc()
                await self.broker.subscribe(room_channel(conn.room_id))
        conns.add(conn)
        metrics.CONNECTIONS.inc()
        mine = self.users.get(conn.user_id)
        if mine is None:
            mine = self.users[conn.user_id] = set()
            await self.broker.subscribe(user_channel(conn.user_id))
        mine.add(conn)

    async def leave(self, conn: Connection) -> None:
        conns = self.rooms.get(conn.room_id)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        metrics.CONNECTIONS.dec()
        mine = self.users.get(conn.user_id, set())
        mine.discard(conn)
        if not mine:
            self.users.pop(conn.user_id, None)
            await self.broker.unsubscribe(user_channel(conn.user_id))
        if not conns:
            del self.rooms[conn.room_id]
            self._order.pop(conn.room_id, None)
            if conn.room_id != LOBBY_ROOM:
                metrics.ROOMS_SUBSCRIBED.dec()
                await self.broker.unsubscribe(room_channel(conn.room_id))

    def dispatch(self, channel: str, data: bytes) -> None:
        if (channel, data) == RECONNECTED:
            self._broadcast_local(RESYNC)
            return
        event = Event.decode(data)
        if channel.startswith(USER_PREFIX):
            for conn in tuple(self.users.get(int(channel[len(USER_PREFIX) :]), ())):
                conn.offer(event)
            return
        room_id = None if channel == LOBBY else int(channel.partition(":")[2])
        if event.kind in ("presence", "state"):
            self._gather(room_id, event)
        elif room_id is None:
            self._broadcast_local(event)
        elif event.kind == "message":
            self._in_order(room_id, event)
        else:
            for conn in tuple(self.rooms.get(room_id, ())):
                conn.offer(event)

    def _in_order(self, room_id: int, event: Event) -> None:
        """Fan out the room's messages in seq order, holding one that came early for
        up to REORDER_WAIT; a seq that never comes is left to the connections' repair."""
        order = self._order.get(room_id)
        if order is None:
            # Where the room's sockets stand is where the next message starts.
            order = self._order[room_id] = RoomOrder()
            order.last = max((c.cursor for c in self.rooms.get(room_id, ())), default=0)
        if order.last and event.seq > order.last + 1:
            order.early[event.seq] = event
            if order.timer is None:
                order.timer = asyncio.get_running_loop().call_later(
                    REORDER_WAIT, self._give_up_waiting, room_id
                )
            return
        self._due(room_id, event)
        order.last = max(order.last, event.seq)
        while (following := order.early.pop(order.last + 1, None)) is not None:
            self._due(room_id, following)
            order.last = following.seq
        if not order.early and order.timer is not None:
            order.timer.cancel()
            order.timer = None

    def _give_up_waiting(self, room_id: int) -> None:
        order = self._order.get(room_id)
        if order is None:
            return
        order.timer = None
        early, order.early = order.early, {}
        for seq in sorted(early):
            self._due(room_id, early[seq])
            order.last = max(order.last, seq)

    def _due(self, room_id: int, event: Event) -> None:
        """Messages dispatched in one pass of the event loop go out together, at its end:
        one write per socket for all of them (a write is most of a delivery's cost)."""
        if not self._due_messages:
            asyncio.get_running_loop().call_soon(self._write_due)
        self._due_messages.setdefault(room_id, []).append(event)

    def _write_due(self) -> None:
        due, self._due_messages = self._due_messages, {}
        for room_id, events in due.items():
            self._fan_out(events, self.rooms.get(room_id, ()))

    def _fan_out(self, events: list[Event], conns: Iterable[Connection]) -> None:
        """Encode the messages' frames once; write them to every socket that is up to
        date and not busy, queue them for the others."""
        first, last = events[0].seq, events[-1].seq
        frames = b"".join(text_frame(e.html.encode()) for e in events)
        contiguous = last - first + 1 == len(events)
        written = 0
        for conn in tuple(conns):
            if contiguous and conn.write_now(first, last, frames):
                written += len(events)
            else:
                for event in events:
                    conn.offer(event)
        if written:
            metrics.DELIVERIES.inc(written)
            now = time.time()
            for event in events:
                if event.saved_at:
                    metrics.SAVE_TO_SEND.observe(max(now - event.saved_at, 0.0))

    def _gather(self, room_id: int | None, event: Event) -> None:
        if event.kind == "presence" and room_id is not None:
            self._lines.setdefault(room_id, []).append(event.html)
        elif event.kind == "state":
            self._states.setdefault(room_id, {})[event.seq] = event.html
        if self._flush is None:
            loop = asyncio.get_running_loop()
            due = max(self._flushed_at + PRESENCE_BATCH, loop.time() + PRESENCE_GATHER)
            self._flush = loop.call_at(due, self.flush_presence)

    def flush_presence(self) -> None:
        """Hand the gathered presence to the connections it concerns, one merge each."""
        self._flush = None
        self._flushed_at = asyncio.get_running_loop().time()
        lines, self._lines = self._lines, {}
        states, self._states = self._states, {}
        for room_id in set(lines) | {r for r in states if r is not None}:
            room_lines, room_states = lines.get(room_id, ()), states.get(room_id)
            for conn in tuple(self.rooms.get(room_id, ())):
                conn.offer_presence(room_lines, room_states)
        if (lobby := states.get(None)) is not None:
            for conns in tuple(self.rooms.values()):
                for conn in tuple(conns):
                    conn.offer_presence(states=lobby)

    def _broadcast_local(self, event: Event) -> None:
        for conns in tuple(self.rooms.values()):
            for conn in tuple(conns):
                conn.offer(event)

    async def _listen(self) -> None:
        while True:
            channel, data = await self.broker.next_published()
            try:
                self.dispatch(channel, data)
            except Exception:
                logger.exception("Could not dispatch an event on channel %s.", channel)
