"""The login throttle shared by every worker through Redis.

Each account and address has a sorted set of its failure times within the
window, trimmed and counted by one Lua script on Redis's clock. If Redis does
not answer, this worker throttles on its own until it does: logins keep
working, with one budget per worker for the while.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.throttle import PER_ACCOUNT, PER_ADDRESS, WINDOW, MemoryLoginThrottle

logger = logging.getLogger(__name__)

# KEYS: the account's and the address's sets. ARGV: window, the two limits, and
# "1" to record a failure first. Returns the seconds to wait, as a string.
FAILURES = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if ARGV[4] == '1' then
    redis.call('ZADD', key, now, tostring(now) .. ':' .. redis.call('INCR', key .. ':n'))
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    redis.call('PEXPIRE', key .. ':n', math.ceil(window * 1000))
  end
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 1]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
return tostring(wait)
"""


class RedisLoginThrottle:
    def __init__(self, url: str, *, prefix: str = "talkroom:login:") -> None:
        self.prefix = prefix
        self._redis = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self._redis.register_script(FAILURES)
        self._local = MemoryLoginThrottle()

    def _keys(self, account: str, address: str) -> list[str]:
        return [f"{self.prefix}account:{account}", f"{self.prefix}address:{address}"]

    async def _run(self, account: str, address: str, *, record: bool) -> float:
        args = [WINDOW, PER_ACCOUNT, PER_ADDRESS, "1" if record else "0"]
        return float(await self._script(keys=self._keys(account, address), args=args))

    async def retry_after(self, *, account: str, address: str) -> float:
        try:
            return await self._run(account, address, record=False)
        except (RedisError, OSError):
            logger.warning("Redis is not answering; throttling logins in this worker alone.")
            return await self._local.retry_after(account=account, address=address)

    async def failed(self, *, account: str, address: str) -> None:
        await self._local.failed(account=account, address=address)
        try:
            await self._run(account, address, record=True)
        except (RedisError, OSError):
            logger.warning("Redis is not answering; a failed login was counted here only.")

    async def succeeded(self, *, account: str) -> None:
        await self._local.succeeded(account=account)
        try:
            await self._redis.delete(f"{self.prefix}account:{account}")
        except (RedisError, OSError):
            logger.warning("Redis is not answering; could not clear a login throttle.")
