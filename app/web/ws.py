"""The WebSocket endpoint: handshake checks, then frames in, fragments out.

Frames in are turned into chat.post calls; fragments out come only from the
hub, through this connection's outbox (errors for this sender included), so
one task writes to the socket.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, WebSocket
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from app import render
from app.auth import session_tag, session_user
from app.chat import Chat, ChatError
from app.db import unavailable
from app.events import MEMBERS, Event
from app.hub import WS_1008_POLICY_VIOLATION, WS_1013_TRY_AGAIN_LATER, Connection
from app.models import User
from app.settings import Settings
from app.web.deps import session_id

logger = logging.getLogger(__name__)
router = APIRouter()

WS_1009_MESSAGE_TOO_BIG = 1009
DATABASE_DOWN = "The database is not answering, so that was not saved; try again in a moment."
DATABASE_DOWN_AT_HANDSHAKE = "The database is not answering; reconnecting shortly."
DEFAULT_PORTS = {"http": 80, "https": 443}


class FrameError(Exception):
    """A frame the server cannot use; the message goes back to the sender."""


def normalize_origin(origin: str) -> str:
    """scheme://host:port, or "" for anything that is not a plain origin (a browser
    never sends a user, path or query in Origin; a bad port raises ValueError)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return ""
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return ""
    return f"{parts.scheme}://{parts.hostname}:{port or DEFAULT_PORTS[parts.scheme]}"


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Same origin as the page, or listed; a client without Origin is no browser page."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    own = normalize_origin(f"{scheme}://{websocket.headers.get('host', '')}")
    allowed = {own, *(normalize_origin(o) for o in settings.allowed_origins)}
    given = normalize_origin(origin)
    return bool(given) and given in allowed


def parse_after(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def parse_frame(text: str) -> tuple[str, str | None]:
    """The message and optional client id of a frame, or FrameError."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("That frame was not JSON.") from None
    if not isinstance(data, dict):
        raise FrameError('Send a JSON object like {"message": "hi"}.')
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
    chat: Chat = state.chat
    sid = session_id(websocket)
    user = await admit(websocket, room_id, sid)
    if user is None:
        return
    conn = Connection(
        websocket,
        room_id=room_id,
        user_id=user.id,
        username=user.username,
        catch_up=chat.catch_up,
        outbox_size=state.settings.outbox_size,
        session=session_tag(sid or ""),
    )
    # Subscribe first, then read the cursor: nothing can fall between the two.
    await state.hub.join(conn)
    try:
        after = parse_after(websocket.query_params.get("after"))
        conn.cursor = after if after is not None else await chat.last_seq(room_id)
        conn.start()
        conn.offer_presence(states={MEMBERS: await chat.join(room_id, user.username)})
        try:
            await receive_frames(websocket, conn, chat, user)
        finally:
            await chat.leave(room_id, user.username)
    except WebSocketDisconnect:
        pass
    finally:
        await state.hub.leave(conn)
        await conn.stop()


async def admit(websocket: WebSocket, room_id: int, sid: str | None) -> User | None:
    """The user this socket is for, or None once the socket has been refused."""
    state = websocket.app.state
    if not origin_allowed(websocket, state.settings):
        # Closing before accept refuses the handshake with HTTP 403.
        await websocket.close(WS_1008_POLICY_VIOLATION)
        return None
    # Accept at once and check after: the page may navigate away while a slow
    # handshake is pending, which browsers report as a console error. And a
    # refused handshake reaches browsers as 1006, which htmx would retry for
    # ever; a close after accept says 1008 (stop) or 1013 (come back later).
    await websocket.accept()
    try:
        user = await session_user(state.db, state.settings, sid)
        found = user is not None and await state.chat.room(room_id) is not None
    except Exception as exc:
        if not unavailable(exc):
            raise
        logger.warning("The database is not answering a handshake: %s", type(exc).__name__)
        await websocket.close(WS_1013_TRY_AGAIN_LATER, DATABASE_DOWN_AT_HANDSHAKE)
        return None
    if user is None or not found:
        await websocket.close(WS_1008_POLICY_VIOLATION)
        return None
    if state.hub.sockets_of(user.id) >= state.settings.sockets_per_user:
        await websocket.close(WS_1008_POLICY_VIOLATION, "Too many open sockets; close a tab.")
        return None
    return user


# A plain Starlette route: FastAPI's dependency solving would keep a few KB per
# open socket (exit stacks, solved parameters, wrappers) for a path parameter.
router.routes.append(WebSocketRoute("/ws/rooms/{room_id:int}", room_socket))


async def receive_frames(websocket: WebSocket, conn: Connection, chat: Chat, user: User) -> None:
    limit = chat.settings.max_frame_bytes
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        text = frame.get("text")
        if text is None:
            conn.offer(Event("notice", render.error("Send text frames holding JSON.")))
            continue
        if len(text) > limit and len(text.encode()) > limit:
            conn.close(WS_1009_MESSAGE_TOO_BIG)
            return
        try:
            message, client_id = parse_frame(text)
            await chat.post(room_id=conn.room_id, author=user, text=message, client_id=client_id)
        except (FrameError, ChatError) as exc:
            conn.offer(Event("notice", render.error(str(exc))))
        except Exception as exc:
            # The database went away: say so and keep the socket, which works again
            # (and the page can resend) once the database is back.
            if not unavailable(exc):
                raise
            logger.warning("The database is not answering: %s", type(exc).__name__)
            conn.offer(Event("notice", render.error(DATABASE_DOWN)))
