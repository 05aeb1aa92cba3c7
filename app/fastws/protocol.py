"""The protocol uvicorn runs for each socket: its sans-I/O one, plus direct writes and
detaching (see the package docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from app.fastws import DIRECT
from app.fastws.inbox import Inbox, Receiver

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """Serve with ``ws="app.fastws.protocol:FrameWritingProtocol"``."""

    detached = False

    async def run_asgi(self) -> None:
        """uvicorn's run_asgi with the two edits listed in app.fastws.upstream: the
        protocol goes into the scope, and a detached socket stays open when the app
        returns. Otherwise kept as upstream wrote it, so the test can compare the two."""
        self.scope["extensions"][DIRECT] = self  # type: ignore[assignment]  # ASGI types extensions as dict[object, object] | None; uvicorn always sets it
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
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self.detached:
            self.transport.close()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake's parsed request and response are kept for the socket's
            # lifetime otherwise: ~2 KB of header objects per idle socket. uvicorn reads
            # them only before the handshake completes.
            self.request = self.response = None  # type: ignore[assignment]  # typed non-optional upstream

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
        # uvicorn's handlers only put_nowait() into self.queue once the app stops
        # calling receive(), so the inbox can stand in for it.
        self.queue = inbox  # type: ignore[assignment]  # an Inbox quacks as the Queue upstream uses
        self.scope = None  # type: ignore[assignment]  # read only during the handshake (tested)
        self.detached = True

    def resume_reading(self) -> None:
        """What uvicorn's receive() does once the queue is empty, for the inbox."""
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that the server waits for when it shuts down, as it does for ASGI."""
        task = self.loop.create_task(coro)
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)
        return task
