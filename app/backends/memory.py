"""The backends of a single process, kept in memory.

They are first-class backends, not mocks: the hub, chat and login run the same
code paths on them as on Redis, and the Redis ones fall back to them while
Redis does not answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque

from app.backends.base import LOGIN_PER_ACCOUNT, LOGIN_PER_ADDRESS, LOGIN_WINDOW, Change


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


class MemoryPresence:
    """One process: sockets per user per room, counted in memory."""

    def __init__(self) -> None:
        self._rooms: dict[int, Counter[str]] = {}

    async def join(self, room_id: int, username: str) -> bool:
        sockets = self._rooms.setdefault(room_id, Counter())
        sockets[username] += 1
        return sockets[username] == 1

    async def leave(self, room_id: int, username: str) -> bool:
        sockets = self._rooms.get(room_id)
        if not sockets or sockets[username] <= 0:
            return False
        sockets[username] -= 1
        if sockets[username]:
            return False
        del sockets[username]
        if not sockets:
            del self._rooms[room_id]
        return True

    async def counts(self) -> dict[int, int]:
        return {room_id: len(users) for room_id, users in self._rooms.items()}

    async def members(self, room_id: int) -> list[str]:
        return sorted(self._rooms.get(room_id, ()), key=str.casefold)

    async def tend(self) -> list[Change]:
        return []

    async def close(self) -> None:
        pass


class MemoryRateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def hit(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0


class MemoryLoginThrottle:
    def __init__(
        self,
        *,
        per_account: int = LOGIN_PER_ACCOUNT,
        per_address: int = LOGIN_PER_ADDRESS,
        window: float = LOGIN_WINDOW,
    ) -> None:
        self.limits = {"account": per_account, "address": per_address}
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    async def retry_after(self, *, account: str, address: str) -> float:
        now = time.monotonic()
        waits = [0.0]
        for kind, value in (("account", account), ("address", address)):
            failures = self._recent((kind, value), now)
            if len(failures) >= self.limits[kind]:
                waits.append(failures[0] + self.window - now)
        return max(waits)

    async def failed(self, *, account: str, address: str) -> None:
        now = time.monotonic()
        for kind, value in (("account", account), ("address", address)):
            self._failures.setdefault((kind, value), deque()).append(now)

    async def succeeded(self, *, account: str) -> None:
        self._failures.pop(("account", account), None)
