"""The per-user message rate limit, shared by every worker through Redis.

A token bucket per key, kept in a Redis hash and updated by one Lua script
with Redis's own clock, so the limit holds however many workers and hosts a
user's tabs and API clients reach. If Redis does not answer, each worker
limits on its own until it does: a chat without Redis's help should stay
usable, not refuse every message.
"""

from __future__ import annotations

import logging
import math

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.ratelimit import MemoryRateLimiter

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket; ARGV: rate per second, burst.
# Returns the seconds to wait as a string (Lua numbers become integers in replies).
TOKEN_BUCKET = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    def __init__(
        self, url: str, rate: float, burst: int, prefix: str = "talkroom:ratelimit:"
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.prefix = prefix
        self._redis = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self._redis.register_script(TOKEN_BUCKET)
        self._fallback = MemoryRateLimiter(rate, burst)
        self._failing = False

    async def hit(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        try:
            wait = float(await self._script(keys=[self.prefix + key], args=[self.rate, self.burst]))
        except (RedisError, OSError) as exc:
            if not self._failing:
                logger.warning("Rate limits cannot reach Redis (%s); limiting locally.", exc)
                self._failing = True
            return await self._fallback.hit(key)
        self._failing = False
        return wait if math.isfinite(wait) else 0.0
