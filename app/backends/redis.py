"""Redis for every worker on every host: the shared pool, and the two limits.

Each process opens ONE connection pool (``create_pool``) and every Redis
backend draws from it, so a worker holds as many connections as it has
commands in flight plus the broker's pub/sub connection, and closing the pool
at shutdown closes them all.

The limits use Redis's own clock in one Lua script each, so they hold however
many workers and hosts a user reaches. If Redis does not answer, each worker
limits on its own until it does: a chat without Redis's help should stay
usable, not refuse every message or login.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from app.backends.base import LOGIN_PER_ACCOUNT, LOGIN_PER_ADDRESS, LOGIN_WINDOW
from app.backends.memory import MemoryLoginThrottle, MemoryRateLimiter

logger = logging.getLogger(__name__)

LUA = Path(__file__).parent / "lua"


def lua(*names: str) -> str:
    """The text of the named scripts in app/backends/lua, joined in order."""
    return "".join((LUA / f"{name}.lua").read_text() for name in names)


TOKEN_BUCKET = lua("token_bucket")
LOGIN_FAILURES = lua("login_failures")


def create_pool(url: str) -> redis.ConnectionPool:
    # Commands retry a couple of times with a short backoff: a blip should not
    # fail a publish, and a dead Redis should reach the local fallbacks quickly
    # (redis-py's default is ten retries). The broker turns retries off on its
    # pub/sub connection, where it must see every break.
    return redis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),
    )


class RedisRateLimiter:
    """A token bucket per key, kept in a Redis hash."""

    def __init__(
        self,
        pool: redis.ConnectionPool,
        rate: float,
        burst: int,
        *,
        prefix: str = "talkroom:ratelimit:",
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.prefix = prefix
        self._redis = redis.Redis(connection_pool=pool)
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


class RedisLoginThrottle:
    """A sorted set of failure times per account and per address, trimmed to the window.

    Failures are also counted locally, so a Redis outage throttles with one
    budget per worker instead of none.
    """

    def __init__(
        self,
        pool: redis.ConnectionPool,
        *,
        per_account: int = LOGIN_PER_ACCOUNT,
        per_address: int = LOGIN_PER_ADDRESS,
        window: float = LOGIN_WINDOW,
        prefix: str = "talkroom:login:",
    ) -> None:
        self.per_account, self.per_address, self.window = per_account, per_address, window
        self.prefix = prefix
        self._redis = redis.Redis(connection_pool=pool)
        self._script = self._redis.register_script(LOGIN_FAILURES)
        self._local = MemoryLoginThrottle(
            per_account=per_account, per_address=per_address, window=window
        )

    def _keys(self, account: str, address: str) -> list[str]:
        return [f"{self.prefix}account:{account}", f"{self.prefix}address:{address}"]

    async def _run(self, account: str, address: str, *, record: bool) -> float:
        args = [self.window, self.per_account, self.per_address, "1" if record else "0"]
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
