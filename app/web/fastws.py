"""uvicorn's sans-I/O WebSocket protocol, made lighter for thousands of idle sockets.

Two additions, both handed to the app in the ASGI scope as the protocol itself,
under ``scope["extensions"][DIRECT]``; served by anything else, the extension is
missing and app.web.ws uses plain ASGI.

- ``write_frame``: a message in a room goes to every socket in it. Through ASGI
  each delivery costs a task switch, a send() coroutine chain and a frame
  encoding per socket; here the hub encodes the frame once and writes the same
  bytes to every socket that can take them at once. Anything that cannot (a
  socket still catching up, one whose buffer is full, one closing) takes the
  ordinary path, so ordering, backpressure and the 1013 contract stay with
  app.hub.
- ``detach``: once a room socket is set up, its ASGI coroutine returns and the
  socket lives on as this protocol object alone. Each message the client sends
  is then handed to a Receiver in a short task, one at a time; while a socket is
  idle no task, coroutine chain, ASGI queue or scope is kept for it (about 10 KB
  per socket, most of what an idle socket cost).

``create_app`` takes room sockets straight to their handler, past the HTTP
middleware and FastAPI's routing: each of their frames (and exit stacks,
wrappers, closures) would otherwise stay alive while the handshake runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Coroutine
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

logger = logging.getLogger(__name__)

DIRECT = "talkroom.direct_socket"
WS_1011_INTERNAL_ERROR = 1011


class Receiver(Protocol):
    """What a detached socket's messages go to."""

    async def receive(self, text: str | None) -> None:
        """One message from the client: its text, or None for a binary one."""

    async def closed(self) -> None:
        """The client has gone; called once, after the last receive()."""


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """Serve with ``ws="app.web.fastws:FrameWritingProtocol"``."""

    detached = False

    async def run_asgi(self) -> None:
        """uvicorn's run_asgi, but a detached socket stays open when the app returns."""
        self.scope["extensions"][DIRECT] = self  # type: ignore[index]
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned %r.", result)
        if self.close_timer is None and not self.detached:
            self.transport.close()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake's parsed request and response are kept for the socket's
            # lifetime otherwise: ~2 KB of header objects per idle socket.
            self.request = self.response = None  # type: ignore[assignment]

    def write_frame(self, frame: bytes) -> bool:
        """Write an encoded frame now if the socket is open and its buffer has room;
        False means it was not written (the caller takes the ordinary path)."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True

    async def send_text(self, text: str) -> None:
        if self.close_sent or self.disconnected:
            raise ClientDisconnected
        await self.send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake, unless it has started or the client is gone."""
        if not (self.close_sent or self.disconnected):
            await self.send({"type": "websocket.close", "code": code, "reason": reason})

    def detach(self, receiver: Receiver) -> None:
        """Hand the socket's messages to receiver from now on; the ASGI app may return."""
        inbox = Inbox(self, receiver)
        while not self.queue.empty():  # anything the client sent during the setup
            inbox.put_nowait(self.queue.get_nowait())
        # uvicorn's handlers put what the client sends into self.queue.
        self.queue = inbox  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.detached = True

    def resume_reading(self) -> None:
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that the server waits for when it shuts down, as it does for ASGI."""
        task = self.loop.create_task(coro)
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)
        return task


class Inbox:
    """Stands in for a detached socket's ASGI queue: what the client sends is handed to
    the receiver in order, one message at a time, in a task that exists only while
    there is something to hand over. uvicorn pauses reading after each message;
    reading resumes once the inbox is empty, so a flooding client waits, as through ASGI.
    """

    __slots__ = ("gone", "pending", "protocol", "receiver", "task")

    def __init__(self, protocol: FrameWritingProtocol, receiver: Receiver) -> None:
        self.protocol = protocol
        self.receiver = receiver
        self.pending: deque[str | None] | None = None
        self.gone = False
        self.task: asyncio.Task[None] | None = None

    def put_nowait(self, event: ASGIReceiveEvent) -> None:
        if self.gone:
            return
        if event["type"] == "websocket.receive":
            if self.pending is None:
                self.pending = deque()
            self.pending.append(event.get("text"))
        elif event["type"] == "websocket.disconnect":
            self.gone = True
        if self.task is None:
            self.task = self.protocol.spawn(self.run())

    async def run(self) -> None:
        try:
            while self.pending:
                await self.receiver.receive(self.pending.popleft())
        except Exception:
            logger.exception("Could not handle a message; closing the socket with 1011.")
            self.gone = True
            await self.protocol.close(WS_1011_INTERNAL_ERROR)
        self.pending = None
        if not self.gone:
            self.task = None
            self.protocol.resume_reading()
            return
        try:
            await self.receiver.closed()
        except Exception:
            logger.exception("Could not clean up after a socket that closed.")


ROOM_SOCKET = re.compile(r"/ws/rooms/([0-9]+)\Z")


def create_app() -> ASGIApp:
    """The app as `talkroom serve` runs it (``app.main.create_app`` plus the shortcut)."""
    from app.main import create_app as create_fastapi
    from app.web.ws import room_socket

    app = create_fastapi()

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and (match := ROOM_SOCKET.match(scope["path"])):
            scope["app"] = app
            scope["path_params"] = {"room_id": int(match[1])}
            await room_socket(WebSocket(scope, receive, send))
            return
        await app(scope, receive, send)

    return serve
