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

logger = logging.getLogger(__name__)

Change = tuple[int, str, str]  # room, "join" or "leave", username

PRELUDE = """
local prefix = KEYS[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- Move a user's socket count in a room by delta; 'join', 'leave' or nil.
local function shift(room, user, delta)
  local key = prefix .. 'r:' .. room
  local after = redis.call('HINCRBY', key, user, delta)
  local before = after - delta
  if after <= 0 then
    redis.call('HDEL', key, user)
    if redis.call('HLEN', key) == 0 then redis.call('SREM', prefix .. 'rooms', room) end
  else
    redis.call('SADD', prefix .. 'rooms', room)
  end
  if before <= 0 and after > 0 then return 'join' end
  if before > 0 and after <= 0 then return 'leave' end
  return nil
end
-- Set one worker's sockets of a user in a room to count.
local function put(wkey, room, user, count)
  local field = room .. ':' .. user
  local old = tonumber(redis.call('HGET', wkey, field) or '0')
  if count > 0 then redis.call('HSET', wkey, field, count) else redis.call('HDEL', wkey, field) end
  if count == old then return nil end
  return shift(room, user, count - old)
end
local function note(out, room, change, user)
  if change then
    table.insert(out, room)
    table.insert(out, change)
    table.insert(out, user)
  end
end
-- Take a worker's whole contribution away.
local function remove(out, worker)
  local wkey = prefix .. 'w:' .. worker
  local fields = redis.call('HGETALL', wkey)
  for i = 1, #fields, 2 do
    local room, user = string.match(fields[i], '^(%d+):(.*)$')
    note(out, room, shift(room, user, -tonumber(fields[i + 1])), user)
  end
  redis.call('DEL', wkey)
  redis.call('ZREM', prefix .. 'workers', worker)
end
"""

# ARGV: worker, ttl, room, user, count -> 1 join, 2 leave, 0 neither, -1 not registered
SET = """
local workers = prefix .. 'workers'
if not redis.call('ZSCORE', workers, ARGV[1]) then return -1 end
redis.call('ZADD', workers, now() + tonumber(ARGV[2]), ARGV[1])
local change = put(prefix .. 'w:' .. ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[5]))
if change == 'join' then return 1 elseif change == 'leave' then return 2 end
return 0
"""

# ARGV: worker, ttl, then room, user, count for every local pair -> changes
SYNC = """
local wkey = prefix .. 'w:' .. ARGV[1]
redis.call('ZADD', prefix .. 'workers', now() + tonumber(ARGV[2]), ARGV[1])
local want, out = {}, {}
for i = 3, #ARGV, 3 do want[ARGV[i] .. ':' .. ARGV[i + 1]] = true end
for _, field in ipairs(redis.call('HKEYS', wkey)) do
  if not want[field] then
    local room, user = string.match(field, '^(%d+):(.*)$')
    note(out, room, put(wkey, room, user, 0), user)
  end
end
for i = 3, #ARGV, 3 do
  note(out, ARGV[i], put(wkey, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])), ARGV[i + 1])
end
return out
"""

# ARGV: worker, ttl -> 1 alive (beat recorded), 0 not registered
BEAT = """
local workers = prefix .. 'workers'
if not redis.call('ZSCORE', workers, ARGV[1]) then return 0 end
redis.call('ZADD', workers, now() + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# -> changes from removing every worker whose heartbeat ran out (a few per call)
REAP = """
local out = {}
local dead = redis.call('ZRANGEBYSCORE', prefix .. 'workers', '-inf', now(), 'LIMIT', 0, 20)
for _, worker in ipairs(dead) do remove(out, worker) end
return out
"""

# ARGV: worker -> changes from removing it
RETIRE = """
local out = {}
remove(out, ARGV[1])
return out
"""

COUNTS = """
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', prefix .. 'rooms')) do
  table.insert(out, room)
  table.insert(out, redis.call('HLEN', prefix .. 'r:' .. room))
end
return out
"""


class RedisPresence:
    def __init__(self, url: str, *, ttl: int, prefix: str = "talkroom:presence:") -> None:
        self.ttl = ttl
        self.prefix = prefix
        self.worker = uuid.uuid4().hex
        self._redis = redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._set, self._sync, self._beat, self._reap, self._retire, self._counts = (
            self._redis.register_script(PRELUDE + body)
            for body in (SET, SYNC, BEAT, REAP, RETIRE, COUNTS)
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
            names = [n.decode() for n in await self._redis.hkeys(f"{self.prefix}r:{room_id}")]
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
        await self._redis.aclose()

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
