"""The WebSocket endpoint: handshake checks, then frames in, fragments out.

Frames in are turned into chat.send calls by the socket's Member; fragments out
come only from the hub, through this connection's outbox (errors for this
sender included), so one task writes to the socket. Served by app.fastws
(as `talkroom serve` does), the socket is detached once it has entered the
room: no coroutine waits on it while it is idle. Which origins may connect is
app.web.origins; the socket under servers other than app.fastws is
app.web.asgi_socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette import status
from starlette.routing import WebSocketRoute

from app import access, render
from app.auth import session_tag, session_user
from app.chat import Chat
from app.connection import CatchUp, Connection
from app.db import unavailable
from app.errors import ChatError
from app.events import ALL_ONLINE, MEMBERS, Event
from app.fastws import DIRECT
from app.hub import LOBBY_ROOM, Hub
from app.models import Message, User
from app.web.asgi_socket import AsgiSocket
from app.web.deps import session_id
from app.web.origins import origin_allowed

if TYPE_CHECKING:
    # Only annotations name it: the plain-ASGI path imports no uvicorn internals.
    from app.fastws.protocol import FrameWritingProtocol

logger = logging.getLogger(__name__)
router = APIRouter()

DATABASE_DOWN = "The database is not answering, so that was not saved; try again in a moment."
DATABASE_DOWN_AT_HANDSHAKE = "The database is not answering; reconnecting shortly."
# A socket's posts queued and not yet saved before it reads another frame.
MAX_SAVING = 32


class FrameError(Exception):
    """A frame the server cannot use; the message goes back to the sender."""


def parse_after(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def parse_object(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("That frame was not JSON.") from None
    if not isinstance(data, dict):
        raise FrameError('Send a JSON object like {"message": "hi"}.')
    return data


def parse_frame(text: str) -> tuple[str, str | None]:
    """The message and optional client id of a frame, or FrameError."""
    return parse_message(parse_object(text))


def parse_read(data: dict[str, Any]) -> int:
    """The seq of a ``{"read": seq}`` frame; the chat clamps it to the room."""
    seq = data["read"]
    # orjson reads an integer past 64 bits as a float: still a (huge) seq, clamped.
    if isinstance(seq, float) and seq.is_integer():
        seq = int(seq)
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise FrameError('"read" must be a seq: a whole number.')
    return seq


def parse_typing(data: dict[str, Any]) -> bool:
    typing = data["typing"]
    if not isinstance(typing, bool):
        raise FrameError('"typing" must be true or false.')
    return typing


def parse_message(data: dict[str, Any]) -> tuple[str, str | None]:
    message = data.get("message")
    if not isinstance(message, str):
        raise FrameError('The frame needs a "message" text.')
    client_id = data.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise FrameError('"client_id" must be a string.')
    return message, client_id


async def room_socket(websocket: WebSocket) -> None:
    room_id: int = websocket.path_params["room_id"]
    state = websocket.app.state
    sid = session_id(websocket)
    user = await admit(websocket, room_id, sid)
    if user is None:
        return
    direct, conn = connection(websocket, user, sid, room_id, state.chat.catch_up)
    member = Member(conn, state.hub, state.chat, user)
    after = parse_after(websocket.query_params.get("after"))
    await listen(websocket, direct, member, member.enter(after))


async def lobby_socket(websocket: WebSocket) -> None:
    """The home page's socket: every room's online count as it changes."""
    state = websocket.app.state
    sid = session_id(websocket)
    user = await admit(websocket, None, sid)
    if user is None:
        return
    direct, conn = connection(websocket, user, sid, LOBBY_ROOM, nothing_missed)
    lobby = Lobby(conn, state.hub, state.chat, user)
    await listen(websocket, direct, lobby, lobby.enter())


async def every_count(chat: Chat, user: User) -> dict[int, int]:
    """The online count of every room the user can read, the empty ones too (they
    may have emptied since)."""
    counts = await chat.online()
    return {room.id: counts.get(room.id, 0) for room in await chat.rooms(user)}


async def nothing_missed(room_id: int, after: int, need: int, since: float) -> None:
    """A lobby socket's catch-up: it is sent no messages, so it never misses one."""
    return None


def connection(
    websocket: WebSocket, user: User, sid: str | None, room_id: int, catch_up: CatchUp
) -> tuple[FrameWritingProtocol | None, Connection]:
    """The socket's connection for the hub, and the protocol that can detach the
    socket (None under servers other than app.fastws)."""
    extensions = websocket.scope.get("extensions") or {}
    direct: FrameWritingProtocol | None = extensions.get(DIRECT)
    conn = Connection(
        direct or AsgiSocket(websocket),
        room_id=room_id,
        user_id=user.id,
        username=user.username,
        catch_up=catch_up,
        outbox_size=websocket.app.state.settings.outbox_size,
        session=session_tag(sid or ""),
        session_id=sid or "",
    )
    return direct, conn


async def listen(
    websocket: WebSocket,
    direct: FrameWritingProtocol | None,
    listener: Listener,
    entering: Awaitable[None],
) -> None:
    """Await the listener's entering, then hand it what the client sends until the
    client leaves; it is told once the socket is gone, whatever failed."""
    try:
        await entering
    except BaseException as exc:
        await listener.closed()
        if not isinstance(exc, Exception) or not unavailable(exc):
            raise
        logger.warning("The database is not answering a socket's entry: %s", type(exc).__name__)
        await websocket.close(status.WS_1013_TRY_AGAIN_LATER, DATABASE_DOWN_AT_HANDSHAKE)
        return
    if direct is not None:
        # The socket lives on without this coroutine (see app.fastws).
        direct.detach(listener)
        return
    try:
        while not listener.stopped:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            await listener.receive(frame.get("text"))
    finally:
        await listener.closed()


class Listener:
    """A socket's connection in the hub, which reads nothing the client sends."""

    __slots__ = ("conn", "hub", "stopped")

    def __init__(self, conn: Connection, hub: Hub) -> None:
        self.conn = conn
        self.hub = hub
        self.stopped = False  # the socket is closing: further frames are not read

    async def receive(self, text: str | None) -> None:
        """Frames to a socket that only listens are ignored."""

    async def closed(self) -> None:
        """The socket has gone: stop delivering to it."""
        await self.hub.leave(self.conn)
        await self.conn.stop()


class Lobby(Listener):
    """A home page's socket: every room's online count, and nothing else. Its user
    counts as online (app.chat.ANYWHERE) while it is open."""

    __slots__ = ("arrived", "chat", "user")

    def __init__(self, conn: Connection, hub: Hub, chat: Chat, user: User) -> None:
        super().__init__(conn, hub)
        self.chat = chat
        self.user = user
        self.arrived = False

    async def closed(self) -> None:
        try:
            if self.arrived:
                self.arrived = False
                await self.chat.depart(self.user.username)
        finally:
            await super().closed()

    async def enter(self) -> None:
        await self.hub.join(self.conn)
        await self.chat.arrive(self.user.username)
        self.arrived = True
        # The page may be older than the counts: its first frame brings them all up
        # to date. The snapshot's place comes first in that frame, so a change that
        # arrives while the counts are read follows it instead of being undone.
        self.conn.offer_presence(states={ALL_ONLINE: ""})
        counts = await every_count(self.chat, self.user)
        self.conn.offer_presence(states={ALL_ONLINE: render.online(counts)})
        self.conn.start()


class Member(Listener):
    """One socket's user in one room: entering, each frame they send, leaving."""

    __slots__ = ("chat", "joined", "saving", "user")

    def __init__(self, conn: Connection, hub: Hub, chat: Chat, user: User) -> None:
        super().__init__(conn, hub)
        self.chat = chat
        self.user = user
        self.joined = False
        # The posts queued and not yet saved and published; None until the first
        # (most sockets only listen, and a set is 200 bytes).
        self.saving: set[asyncio.Future[Message]] | None = None

    async def enter(self, after: int | None) -> None:
        conn, chat = self.conn, self.chat
        # Subscribe first, then read the cursor: nothing can fall between the two.
        await self.hub.join(conn)
        conn.cursor = after if after is not None else await chat.last_seq(conn.room_id)
        conn.start()
        members = await chat.join(conn.room_id, self.user.username)
        self.joined = True
        conn.offer_presence(states={MEMBERS: members})

    async def receive(self, text: str | None) -> None:
        """One frame from the client: a post, or a notice saying what was wrong."""
        if self.stopped:
            return
        if text is None:
            self.conn.offer(Event("notice", render.error("Send text frames holding JSON.")))
            return
        limit = self.chat.settings.max_frame_bytes
        if len(text) > limit and len(text.encode()) > limit:
            self.stopped = True
            self.conn.close(status.WS_1009_MESSAGE_TOO_BIG)
            return
        try:
            data = parse_object(text)
            room_id = self.conn.room_id
            if "read" in data:
                await self.chat.read(room_id=room_id, user=self.user, seq=parse_read(data))
            elif "typing" in data:
                if parse_typing(data):
                    await self.chat.typing(room_id=room_id, user=self.user)
            else:
                message, client_id = parse_message(data)
                sending = await self.chat.send(
                    room_id=room_id, author=self.user, text=message, client_id=client_id
                )
                await self._follow(sending)
        except Exception as exc:
            self._failed(exc)

    async def _follow(self, sending: asyncio.Future[Message]) -> None:
        """Read the next frame while this post is saved: a fast sender's posts then
        share a transaction, in the order sent. Past MAX_SAVING unsaved, the next
        frame waits (and the client with it)."""
        if self.saving is None:
            self.saving = set()
        self.saving.add(sending)
        sending.add_done_callback(self._sent)
        if len(self.saving) >= MAX_SAVING:
            await asyncio.wait(self.saving, return_when=asyncio.FIRST_COMPLETED)

    def _sent(self, sending: asyncio.Future[Message]) -> None:
        if self.saving is not None:
            self.saving.discard(sending)
        if not sending.cancelled() and isinstance(exc := sending.exception(), Exception):
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        """Tell the sender what went wrong with a frame; close the socket (1011) on
        what was not theirs to fix, as an exception out of receive() would."""
        if isinstance(exc, (FrameError, ChatError)):
            self.conn.offer(Event("notice", render.error(str(exc))))
        elif unavailable(exc):
            # The database went away: say so and keep the socket, which works again
            # (and the page can resend) once the database is back.
            logger.warning("The database is not answering: %s", type(exc).__name__)
            self.conn.offer(Event("notice", render.error(DATABASE_DOWN)))
        else:
            logger.error("Could not handle a frame; closing the socket with 1011.", exc_info=exc)
            self.stopped = True
            self.conn.close(status.WS_1011_INTERNAL_ERROR)

    async def closed(self) -> None:
        """The socket has gone: leave the room (once, whatever failed before)."""
        try:
            if self.joined:
                self.joined = False
                await self.chat.leave(self.conn.room_id, self.user.username)
        finally:
            await super().closed()


async def admit(websocket: WebSocket, room_id: int | None, sid: str | None) -> User | None:
    """The user this socket is for (in this room, if one), or None once the socket has
    been refused."""
    state = websocket.app.state
    if not origin_allowed(websocket, state.settings):
        # Closing before accept refuses the handshake with HTTP 403.
        await websocket.close(status.WS_1008_POLICY_VIOLATION)
        return None
    # Accept at once and check after: the page may navigate away while a slow
    # handshake is pending, which browsers report as a console error. And a
    # refused handshake reaches browsers as 1006, which htmx would retry for
    # ever; a close after accept says 1008 (stop) or 1013 (come back later).
    await websocket.accept()
    try:
        user = await session_user(state.db, state.settings, sid)
        # A room the user cannot read is refused exactly as a missing one.
        found = user is not None and (
            room_id is None or await access.can_read(state.db, user, room_id)
        )
    except Exception as exc:
        if not unavailable(exc):
            raise
        logger.warning("The database is not answering a handshake: %s", type(exc).__name__)
        await websocket.close(status.WS_1013_TRY_AGAIN_LATER, DATABASE_DOWN_AT_HANDSHAKE)
        return None
    if user is None or not found:
        await websocket.close(status.WS_1008_POLICY_VIOLATION)
        return None
    if state.hub.sockets_of(user.id) >= state.settings.sockets_per_user:
        await websocket.close(
            status.WS_1008_POLICY_VIOLATION, "Too many open sockets; close a tab."
        )
        return None
    return user


# A plain Starlette route: FastAPI's dependency solving would keep a few KB per
# open socket (exit stacks, solved parameters, wrappers) for a path parameter.
router.routes.append(WebSocketRoute("/ws/rooms/{room_id:int}", room_socket))
router.routes.append(WebSocketRoute("/ws/lobby", lobby_socket))
