"""Local connections per room, fan-out through bounded outboxes, ordered delivery.

One hub per process. Its listener pulls events from the broker and drops them
into the outboxes of the local connections they concern; it never waits on a
socket. Each connection's sender drains its own outbox, so a slow client only
slows itself, and is closed with 1013 once its outbox is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketState

from app import metrics
from app.broker import RECONNECTED, Broker
from app.events import LOBBY, RESYNC, Event, room_channel

logger = logging.getLogger(__name__)

WS_1008_POLICY_VIOLATION = 1008
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
WS_1013_TRY_AGAIN_LATER = 1013

# Given a room and the last seq a connection holds: one frame that brings it up
# to date and the seq that frame ends at, or None when nothing is missing.
CatchUp = Callable[[int, int], Awaitable[tuple[str, int] | None]]


class Connection:
    """One WebSocket in one room, with its outbox and its delivery cursor."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        room_id: int,
        user_id: int,
        username: str,
        catch_up: CatchUp,
        outbox_size: int,
    ) -> None:
        self.websocket = websocket
        self.room_id = room_id
        self.user_id = user_id
        self.username = username
        self.cursor = 0  # the last seq this connection delivered
        self._catch_up = catch_up
        self._outbox: deque[Event] = deque()
        self._outbox_size = outbox_size
        self._ready = asyncio.Event()
        self._closing: int | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def offer(self, event: Event) -> None:
        """Queue an event without waiting; a full outbox closes the connection."""
        if self._closing is not None:
            return
        if len(self._outbox) >= self._outbox_size:
            self._drop_slow()
            return
        self._outbox.append(event)
        self._ready.set()

    def close(self, code: int) -> None:
        """Ask the sender to close the socket once it is free."""
        self._closing = code
        self._outbox.clear()
        self._ready.set()

    def _drop_slow(self) -> None:
        # The sender may be stuck writing to a client that stopped reading, so
        # it is cancelled rather than asked.
        logger.info("Closing slow connection of user %s in room %s.", self.user_id, self.room_id)
        metrics.SLOW_CLIENTS_CLOSED.inc()
        self._closing = WS_1013_TRY_AGAIN_LATER
        self._outbox.clear()
        if self._sender:
            self._sender.cancel()
        self._closer = asyncio.create_task(self._close(WS_1013_TRY_AGAIN_LATER))

    def start(self) -> None:
        self._sender = asyncio.create_task(self.run(), name=f"sender-{self.room_id}")
        self._sender.add_done_callback(self._sender_done)

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None or self._closing is not None:
            return
        # A dead sender would leave a silent socket: close it with 1011 so the
        # client reconnects and resumes from its last seq.
        logger.warning(
            "Sender for user %s in room %s failed.",
            self.user_id,
            self.room_id,
            exc_info=task.exception(),
        )
        self._closing = WS_1011_INTERNAL_ERROR
        self._closer = asyncio.create_task(self._close(WS_1011_INTERNAL_ERROR))

    async def stop(self) -> None:
        if self._sender:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    async def run(self) -> None:
        """Catch up from the database, then deliver live events in seq order."""
        await self._repair()
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._outbox and self._closing is None:
                await self._deliver(self._outbox.popleft())
            if self._closing is not None:
                await self._close(self._closing)
                return

    async def _deliver(self, event: Event) -> None:
        if event.kind == "message":
            if event.seq <= self.cursor:
                return  # already delivered (catch-up or a duplicate)
            if event.seq > self.cursor + 1:
                metrics.GAP_REPAIRS.labels("gap").inc()
                await self._repair()  # a gap: pub/sub lost or reordered an event
                if event.seq <= self.cursor:
                    return
            await self.websocket.send_text(event.html)
            self.cursor = event.seq
            metrics.DELIVERIES.inc()
            if event.saved_at:
                metrics.SAVE_TO_SEND.observe(max(time.time() - event.saved_at, 0.0))
        elif event.kind == "resync":
            metrics.GAP_REPAIRS.labels("resync").inc()
            await self._repair()
        elif event.kind == "close":
            # A close naming a user (a removed account) is for that user's sockets only.
            if not event.html or event.html == str(self.user_id):
                self._closing = event.seq
        else:
            await self.websocket.send_text(event.html)

    async def _repair(self) -> None:
        update = await self._catch_up(self.room_id, self.cursor)
        if update is not None:
            html, self.cursor = update
            await self.websocket.send_text(html)

    async def _close(self, code: int) -> None:
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code)


class Hub:
    """This process's rooms and their local connections."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.rooms: dict[int, set[Connection]] = {}
        self._per_user: Counter[int] = Counter()
        self._listener: asyncio.Task[None] | None = None

    @property
    def connections(self) -> int:
        return sum(len(conns) for conns in self.rooms.values())

    def sockets_of(self, user_id: int) -> int:
        return self._per_user[user_id]

    async def start(self) -> None:
        await self.broker.subscribe(LOBBY)
        self._listener = asyncio.create_task(self._listen(), name="hub-listener")

    async def stop(self, code: int = WS_1012_SERVICE_RESTART) -> None:
        """Close every local socket (1012 on a restart: clients reconnect and resume)."""
        for conns in self.rooms.values():
            for conn in conns:
                conn.close(code)
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def join(self, conn: Connection) -> None:
        conns = self.rooms.get(conn.room_id)
        if conns is None:
            conns = self.rooms[conn.room_id] = set()
            metrics.ROOMS_SUBSCRIBED.inc()
            await self.broker.subscribe(room_channel(conn.room_id))
        conns.add(conn)
        metrics.CONNECTIONS.inc()
        self._per_user[conn.user_id] += 1

    async def leave(self, conn: Connection) -> None:
        conns = self.rooms.get(conn.room_id)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        metrics.CONNECTIONS.dec()
        self._per_user[conn.user_id] -= 1
        if not self._per_user[conn.user_id]:
            del self._per_user[conn.user_id]
        if not conns:
            del self.rooms[conn.room_id]
            metrics.ROOMS_SUBSCRIBED.dec()
            await self.broker.unsubscribe(room_channel(conn.room_id))

    def dispatch(self, channel: str, data: bytes) -> None:
        if (channel, data) == RECONNECTED:
            self._broadcast_local(RESYNC)
            return
        event = Event.decode(data)
        if channel == LOBBY:
            self._broadcast_local(event)
            return
        room_id = int(channel.partition(":")[2])
        for conn in tuple(self.rooms.get(room_id, ())):
            conn.offer(event)

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
