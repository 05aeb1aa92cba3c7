"""Where a detached socket's messages go: one short task per burst, none while idle."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from starlette.status import WS_1011_INTERNAL_ERROR

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveEvent

logger = logging.getLogger(__name__)


class Receiver(Protocol):
    """What a detached socket's messages go to."""

    async def receive(self, text: str | None) -> None:
        """One message from the client: its text, or None for a binary one."""

    async def closed(self) -> None:
        """The client has gone; called once, after the last receive()."""


class Detached(Protocol):
    """What the inbox needs from its socket (app.fastws.protocol.FrameWritingProtocol)."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    async def close(self, code: int, reason: str = "") -> None: ...

    def resume_reading(self) -> None: ...


class Inbox:
    """Stands in for a detached socket's ASGI queue: what the client sends is handed to
    the receiver in order, one message at a time, in a task that exists only while
    there is something to hand over. uvicorn pauses reading after each message;
    reading resumes once the inbox is empty, so a flooding client waits, as through ASGI.
    """

    __slots__ = ("gone", "pending", "protocol", "receiver", "task")

    def __init__(self, protocol: Detached, receiver: Receiver) -> None:
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
