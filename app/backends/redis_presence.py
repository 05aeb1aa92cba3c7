"""Presence shared by every worker through Redis, healing itself after a crash.

Each worker writes its own contribution: a hash ``w:{worker}`` of
``{room}:{username}`` to its socket count, and a heartbeat, the score of the
worker in the sorted set ``workers`` (Redis time + ttl). A room's hash
``r:{room}`` adds up every worker's sockets per user, so "is this the user's
first socket anywhere?" is one atomic step. Every change runs as a Lua script,
so two workers never interleave halfway.

- A graceful stop removes the worker's contribution at once (``close``).
- A worker killed with SIGKILL stops beating; any other worker's ``tend``
  (every ttl/4) finds it expired, subtracts its contribution and returns the
  users who are gone, for the chat service to announce. So it takes at most
  about ttl + ttl/4 (19 s with the default 15 s).
- A worker that finds itself unregistered (Redis restarted and lost the data,
  or others took it for dead during a long pause) writes its whole local state
  back.

While Redis is unreachable, answers come from this worker's own sockets and the
contribution is rewritten once Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.backends.base import Change
from app.backends.redis import lua

logger = logging.getLogger(__name__)


# Every script starts with the shared helpers (KEYS[1] is the key prefix).
SET, SYNC, BEAT, REAP, RETIRE, COUNTS = (
    lua("presence", f"presence_{name}")
    for name in ("set", "sync", "beat", "reap", "retire", "counts")
)


class RedisPresence:
    def __init__(
        self, pool: redis.ConnectionPool, *, ttl: int, prefix: str = "talkroom:presence:"
    ) -> None:
        self.ttl = ttl
        self.prefix = prefix
        self.worker = uuid.uuid4().hex
        self._redis = redis.Redis(connection_pool=pool)
        self._set, self._sync, self._beat, self._reap, self._retire, self._counts = (
            self._redis.register_script(body) for body in (SET, SYNC, BEAT, REAP, RETIRE, COUNTS)
        )
        self._local: Counter[tuple[int, str]] = Counter()  # this worker's sockets
        self._lock = asyncio.Lock()  # one change at a time: writes are absolute counts
        self._pending: list[Change] = []  # changes found on the way, for tend()
        self._dirty = True  # Redis may not hold our contribution: rewrite it whole
        self._failing = False

    async def join(self, room_id: int, username: str) -> bool:
        async with self._lock:
            self._local[room_id, username] += 1
            return await self._write(room_id, username) == "join"

    async def leave(self, room_id: int, username: str) -> bool:
        async with self._lock:
            if self._local[room_id, username] <= 0:
                self._local.pop((room_id, username), None)
                return False
            self._local[room_id, username] -= 1
            return await self._write(room_id, username) == "leave"

    async def counts(self) -> dict[int, int]:
        try:
            flat = await self._counts(keys=[self.prefix])
        except (RedisError, OSError) as exc:
            self._trouble(exc)
            local: Counter[int] = Counter(room_id for room_id, _ in self._local)
            return dict(local)
        return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def members(self, room_id: int) -> list[str]:
        try:
            keys: list[bytes | str] = await self._redis.hkeys(f"{self.prefix}r:{room_id}")
            names = [n.decode() if isinstance(n, bytes) else n for n in keys]
        except (RedisError, OSError) as exc:
            self._trouble(exc)
            names = [user for room, user in self._local if room == room_id]
        return sorted(names, key=str.casefold)

    async def tend(self) -> list[Change]:
        async with self._lock:
            try:
                if self._dirty or not await self._beat(keys=[self.prefix], args=self._me()):
                    self._pending += await self._write_all()
                self._pending += decode(await self._reap(keys=[self.prefix]))
                if self._failing:
                    logger.info("Presence is written to Redis again.")
                    self._failing = False
            except (RedisError, OSError) as exc:
                self._trouble(exc)
            changes, self._pending = self._pending, []
        return changes

    async def close(self) -> None:
        async with self._lock:
            try:
                await self._retire(keys=[self.prefix], args=[self.worker])
            except (RedisError, OSError) as exc:
                # The heartbeat runs out and another worker reaps us.
                logger.warning("Could not remove this worker's presence: %s", exc)
            self._local.clear()

    def _me(self) -> list[str | int]:
        return [self.worker, self.ttl]

    async def _write(self, room_id: int, username: str) -> str | None:
        """Store this worker's count for one user in one room; 'join', 'leave' or None."""
        count = self._local[room_id, username]
        if not count:
            del self._local[room_id, username]
        try:
            if not self._dirty:
                code = await self._set(
                    keys=[self.prefix], args=[*self._me(), room_id, username, count]
                )
                if code != -1:
                    return {1: "join", 2: "leave"}.get(code)
            mine = None
            for change in await self._write_all():
                if change[0] == room_id and change[2] == username:
                    mine = change[1]
                else:
                    self._pending.append(change)
            return mine
        except (RedisError, OSError) as exc:
            self._trouble(exc)
            # Our best guess alone: this worker's first socket joins, its last leaves.
            return "join" if count == 1 else "leave" if count == 0 else None

    async def _write_all(self) -> list[Change]:
        args: list[str | int] = self._me()
        for (room_id, username), count in self._local.items():
            args += [room_id, username, count]
        changes = decode(await self._sync(keys=[self.prefix], args=args))
        self._dirty = False
        return changes

    def _trouble(self, exc: Exception) -> None:
        self._dirty = True
        if not self._failing:
            logger.warning("Presence cannot reach Redis (%s); counting locally meanwhile.", exc)
            self._failing = True


def decode(flat: list[bytes]) -> list[Change]:
    return [
        (int(flat[i]), flat[i + 1].decode(), flat[i + 2].decode()) for i in range(0, len(flat), 3)
    ]
