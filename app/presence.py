"""Who is online in which room.

A user is in a room while at least one of their sockets is; ``join`` says whether
this socket brought them in and ``leave`` whether it took them out, so a user
with many tabs joins once and leaves once.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class Presence(Protocol):
    async def join(self, room_id: int, username: str) -> bool: ...
    async def leave(self, room_id: int, username: str) -> bool: ...
    async def counts(self) -> dict[int, int]: ...
    async def members(self, room_id: int) -> list[str]: ...
    async def tend(self) -> list[tuple[int, str, str]]:
        """Periodic upkeep; returns (room, "join" or "leave", username) to announce."""
        ...

    async def close(self) -> None: ...


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

    async def tend(self) -> list[tuple[int, str, str]]:
        return []

    async def close(self) -> None:
        pass


def create_presence(redis_url: str | None, ttl: int) -> Presence:
    if not redis_url:
        return MemoryPresence()
    from app.redis_presence import RedisPresence

    return RedisPresence(redis_url, ttl=ttl)
