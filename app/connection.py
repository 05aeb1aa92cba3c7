"""One WebSocket in one room: its delivery cursor, its bounded outbox and its sender.

The hub offers events to a connection without waiting; the connection's own
sender writes them in seq order, repairs gaps through its catch-up, merges
pending presence into one frame, and closes the socket with 1013 once its outbox
is full, so a slow client only slows itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from starlette import status
from starlette.websockets import WebSocketDisconnect

from app import metrics
from app.events import Event

logger = logging.getLogger(__name__)

# Given a room, the last seq a connection holds, a seq known to be committed (0:
# none) and the loop time since which the connection is subscribed (what committed
# before then must be in the answer): one frame that brings it up to date, at least
# to that seq, and the seq the frame ends at, or None when nothing is missing.
CatchUp = Callable[[int, int, int, float], Awaitable[tuple[str, int] | None]]

# "X joined" lines kept for a connection that is behind; the member list that
# comes with them is authoritative, so older lines are simply dropped.
PRESENCE_LINES = 30
# What a sender's write raises when the client has gone (uvicorn's
# ClientDisconnected is an OSError): an ordinary end, not a failure.
DISCONNECTED = (WebSocketDisconnect, OSError)


class Presence:
    """Presence waiting for a connection's sender: lines in order, newest state per key."""

    __slots__ = ("lines", "states")

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=PRESENCE_LINES)
        self.states: dict[int, str] = {}

    def add(self, lines: Iterable[str], states: dict[int, str]) -> None:
        self.lines.extend(lines)
        self.states.update(states)

    def frame(self) -> str:
        return "".join(self.lines) + "".join(self.states.values())


# Stands in the outbox for the connection's pending Presence (one at a time).
PRESENCE_DUE = Event("presence")


class Socket(Protocol):
    """The one WebSocket a connection writes to (app.fastws, or an ASGI adapter)."""

    def write_frame(self, frame: bytes) -> bool:
        """Write an encoded frame now, or return False: it must take send_text."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int) -> None:
        """Start the closing handshake; nothing once it has started."""


class Connection:
    """One WebSocket in one room, with its outbox and its delivery cursor.

    Its sender task runs only while there is something to send: an idle socket
    costs no task. With no sender running the connection is up to date, so the
    hub may write a message's ready-made frame to it directly (write_now).
    """

    # Thousands of these sit idle: no per-instance dict.
    __slots__ = (
        "_catch_up",
        "_closer",
        "_closing",
        "_outbox",
        "_outbox_size",
        "_presence",
        "_repair_first",
        "_since",
        "_sender",
        "_started",
        "cursor",
        "room_id",
        "session",
        "session_id",
        "socket",
        "user_id",
        "username",
    )

    def __init__(
        self,
        socket: Socket,
        *,
        room_id: int,
        user_id: int,
        username: str,
        catch_up: CatchUp,
        outbox_size: int,
        session: str = "",
        session_id: str = "",
    ) -> None:
        self.socket = socket
        self.room_id = room_id
        self.session = session  # auth.session_tag of the session that opened it
        # The session itself, which app.access checks is still there; it never
        # leaves this process (the tag is what close events name).
        self.session_id = session_id
        self.user_id = user_id
        self.username = username
        self.cursor = 0  # the last seq this connection delivered
        self._catch_up = catch_up
        self._outbox: deque[Event] = deque()
        self._outbox_size = outbox_size
        self._presence: Presence | None = None  # made when needed: most sockets sit idle
        self._started = False
        self._repair_first = False
        self._since = float("-inf")
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
        self._wake()

    def write_now(self, first: int, last: int, frames: bytes) -> bool:
        """Write the ready-made frames of messages first..last straight to the socket
        when they are next and nothing is queued before them; False: they must go
        through the outbox."""
        if (
            self._started
            and self._sender is None
            and first == self.cursor + 1
            and not self._outbox
            and self._closing is None
            and self.socket.write_frame(frames)
        ):
            self.cursor = last
            return True
        return False

    def offer_presence(
        self, lines: Iterable[str] = (), states: dict[int, str] | None = None
    ) -> None:
        """Merge presence into the one pending presence frame; it never fills the outbox."""
        if self._closing is not None:
            return
        if self._presence is None:
            self._presence = Presence()
            self._outbox.append(PRESENCE_DUE)
            self._wake()
        self._presence.add(lines, states or {})

    def close(self, code: int) -> None:
        """Ask the sender to close the socket once it is free."""
        self._closing = code
        self._outbox.clear()
        self._wake()

    def _drop_slow(self) -> None:
        # The sender may be stuck writing to a client that stopped reading, so
        # it is cancelled rather than asked.
        logger.info("Closing slow connection of user %s in room %s.", self.user_id, self.room_id)
        metrics.SLOW_CLIENTS_CLOSED.inc()
        self._closing = status.WS_1013_TRY_AGAIN_LATER
        self._outbox.clear()
        if self._sender:
            self._sender.cancel()
        self._closer = asyncio.create_task(self._close(status.WS_1013_TRY_AGAIN_LATER))

    def start(self) -> None:
        """Catch up from the database, then deliver what is offered, in seq order."""
        self._started = True
        self._repair_first = True
        # Called once subscribed: the first repair holds what was published before.
        self._since = asyncio.get_running_loop().time()
        self._wake()

    def _wake(self) -> None:
        if self._started and self._sender is None:
            self._sender = asyncio.create_task(self._send(), name=f"sender-{self.room_id}")
            self._sender.add_done_callback(self._sender_done)

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        self._sender = None
        if task.cancelled():
            return
        if task.exception() is None:
            if self._outbox and self._closing is None:
                self._wake()  # offered after the sender's last look at the outbox
            return
        if self._closing is not None:
            return
        if isinstance(task.exception(), DISCONNECTED):
            # The client left while a frame was being written: nothing to close.
            logger.debug("User %s left room %s mid-write.", self.user_id, self.room_id)
            return
        # A dead sender would leave a silent socket: close it with 1011 so the
        # client reconnects and resumes from its last seq.
        logger.warning(
            "Sender for user %s in room %s failed.",
            self.user_id,
            self.room_id,
            exc_info=task.exception(),
        )
        self._closing = status.WS_1011_INTERNAL_ERROR
        self._closer = asyncio.create_task(self._close(status.WS_1011_INTERNAL_ERROR))

    async def stop(self) -> None:
        self._started = False
        if self._sender:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    async def _send(self) -> None:
        if self._repair_first:
            self._repair_first = False
            await self._repair(since=self._since)
        while self._outbox and self._closing is None:
            await self._deliver(self._outbox.popleft())
        if self._closing is not None:
            await self._close(self._closing)

    async def _deliver(self, event: Event) -> None:
        if event is PRESENCE_DUE:
            presence, self._presence = self._presence, None
            if presence is not None:
                await self.socket.send_text(presence.frame())
        elif event.kind == "message":
            if event.seq <= self.cursor:
                return  # already delivered (catch-up or a duplicate)
            if event.seq > self.cursor + 1:
                metrics.GAP_REPAIRS.labels("gap").inc()
                # A gap: pub/sub lost or reordered an event. This one is committed,
                # so the repair must reach it, or what lies between would be skipped.
                await self._repair(need=event.seq)
                if event.seq <= self.cursor:
                    return
            await self.socket.send_text(event.html)
            self.cursor = event.seq
            metrics.DELIVERIES.inc()
            if event.saved_at:
                metrics.SAVE_TO_SEND.observe(max(time.time() - event.saved_at, 0.0))
        elif event.kind == "resync":
            metrics.GAP_REPAIRS.labels("resync").inc()
            # Offered once resubscribed: what was published while away must be read.
            await self._repair(since=asyncio.get_running_loop().time())
        elif event.kind == "close":
            # A close naming a user (a removed account) or a session (a logout) is
            # for those sockets only; an empty one is for all (a deleted room).
            if event.html in ("", str(self.user_id), f"session:{self.session}"):
                self._closing = event.seq
        else:
            await self.socket.send_text(event.html)

    async def _repair(self, need: int = 0, since: float = float("-inf")) -> None:
        update = await self._catch_up(self.room_id, self.cursor, need, since)
        if update is not None:
            html, self.cursor = update
            await self.socket.send_text(html)

    async def _close(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await self.socket.close(code)
