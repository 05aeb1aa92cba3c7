"""uvicorn's sans-I/O WebSocket protocol, plus a way to write a ready-made frame.

A message in a room goes to every socket in it. Through ASGI each delivery
costs a task switch, a send() coroutine chain and a frame encoding per socket;
here the hub encodes the frame once and writes the same bytes to every socket
that can take them at once. Anything that cannot (a socket still catching up,
one whose buffer is full, one closing) takes the ordinary ASGI path, so
ordering, backpressure and the 1013 contract stay with app.hub.

The writer is handed to the application in the ASGI scope, under
``scope["extensions"][WRITE_FRAME]``; served by anything else, the extension is
missing and app.hub uses ASGI only.

``create_app`` takes room sockets straight to their handler, past the HTTP
middleware and FastAPI's routing: each of their frames (and exit stacks,
wrappers, closures) would otherwise stay alive with every open socket.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from app.frames import WRITE_FRAME


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """Serve with ``ws="app.web.fastws:FrameWritingProtocol"``."""

    async def run_asgi(self) -> None:
        self.scope["extensions"][WRITE_FRAME] = self.write_frame  # type: ignore[index]
        await super().run_asgi()

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
