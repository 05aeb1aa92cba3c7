"""What `talkroom serve` runs: the FastAPI app, with room sockets taken straight to
their handler.

Past the HTTP middleware and FastAPI's routing, because each of their frames (and
exit stacks, wrappers, closures) would otherwise stay alive for as long as a room
socket's handshake runs. Any other server can run ``app.main:create_app`` instead.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from app.main import create_app as create_fastapi
from app.web.ws import room_socket

ROOM_SOCKET = re.compile(r"/ws/rooms/([0-9]+)\Z")


def create_app() -> ASGIApp:
    app = create_fastapi()

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and (match := ROOM_SOCKET.match(scope["path"])):
            scope["app"] = app
            scope["path_params"] = {"room_id": int(match[1])}
            await room_socket(WebSocket(scope, receive, send))
            return
        await app(scope, receive, send)

    return serve
