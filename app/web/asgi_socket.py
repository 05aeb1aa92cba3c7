"""A connection's socket through plain ASGI, for servers without app.fastws.

Kept apart from app.web.ws so that the fallback path is one small piece that
can be read (and tested, see tests/integration/test_plain_asgi.py) on its own.
"""

from __future__ import annotations

from starlette.websockets import WebSocket, WebSocketState


class AsgiSocket:
    """A connection's socket through plain ASGI, for servers without app.fastws."""

    __slots__ = ("websocket",)

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    def write_frame(self, frame: bytes) -> bool:
        # No direct frame writing under plain ASGI: the connection falls back to
        # send_text for every fragment.
        return False

    async def send_text(self, text: str) -> None:
        await self.websocket.send_text(text)

    async def close(self, code: int) -> None:
        # The client may have closed first; closing again would raise.
        if self.websocket.application_state == WebSocketState.CONNECTED:
            await self.websocket.close(code)
