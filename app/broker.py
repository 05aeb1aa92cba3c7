"""Publish/subscribe between processes: a tiny protocol, a memory and a Redis backend.

The hub owns one broker per process, subscribes a channel when its first local
listener arrives and unsubscribes when the last one leaves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

logger = logging.getLogger(__name__)

# Yielded by next_published() after a reconnect: events may have been lost.
RECONNECTED = ("", b"")


class Broker(Protocol):
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, data: bytes) -> None: ...
    async def next_published(self) -> tuple[str, bytes]: ...
    async def ping(self) -> bool: ...


class MemoryBroker:
    """One process only: publish hands the event straight to this process's listener."""

    def __init__(self) -> None:
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, data: bytes) -> None:
        if channel in self._channels:
            self._queue.put_nowait((channel, data))

    async def next_published(self) -> tuple[str, bytes]:
        return await self._queue.get()

    async def ping(self) -> bool:
        return True


def create_broker(redis_url: str | None) -> Broker:
    if not redis_url:
        return MemoryBroker()
    from app.redis_broker import RedisBroker

    return RedisBroker(redis_url)
