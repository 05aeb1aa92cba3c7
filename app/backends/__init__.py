"""The backends one process runs on, chosen from Settings.

Without ``redis_url`` everything lives in this process's memory; with it every
backend shares ONE Redis connection pool, closed with them by ``Backends.close``.
Redis is imported only in that branch, so a memory deployment never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.backends.base import (
    RECONNECTED,
    TYPING_EVERY,
    Broker,
    LoginThrottle,
    Presence,
    RateLimiter,
)
from app.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

__all__ = [
    "RECONNECTED",
    "TYPING_EVERY",
    "Backends",
    "Broker",
    "LoginThrottle",
    "Presence",
    "RateLimiter",
    "create_backends",
]


@dataclass(frozen=True)
class Backends:
    broker: Broker
    presence: Presence
    limiter: RateLimiter
    login_throttle: LoginThrottle
    typing: RateLimiter  # one "is typing" per user and room every TYPING_EVERY seconds
    pool: ConnectionPool | None = None

    @property
    def shared(self) -> bool:
        """True when other workers see the same state (Redis), so presence needs tending."""
        return self.pool is not None

    async def close(self) -> None:
        """Stop everything; after the hub has stopped reading the broker."""
        try:
            # Presence first: taking this worker's sockets out still needs Redis.
            await self.presence.close()
            await self.broker.disconnect()
        finally:
            if self.pool is not None:
                await self.pool.aclose()


def create_backends(settings: Settings) -> Backends:
    """The backends for these settings, not yet connected (``broker.connect()`` is next)."""
    rate, burst = settings.message_rate, settings.message_burst
    if not settings.redis_url:
        from app.backends.memory import (
            MemoryBroker,
            MemoryLoginThrottle,
            MemoryPresence,
            MemoryRateLimiter,
        )

        return Backends(
            broker=MemoryBroker(),
            presence=MemoryPresence(),
            limiter=MemoryRateLimiter(rate, burst),
            login_throttle=MemoryLoginThrottle(),
            typing=MemoryRateLimiter(1 / TYPING_EVERY, 1),
        )

    from app.backends.redis import RedisLoginThrottle, RedisRateLimiter, create_pool
    from app.backends.redis_broker import RedisBroker
    from app.backends.redis_presence import RedisPresence

    pool = create_pool(settings.redis_url)
    return Backends(
        broker=RedisBroker(pool),
        presence=RedisPresence(pool, ttl=settings.presence_ttl),
        limiter=RedisRateLimiter(pool, rate, burst),
        login_throttle=RedisLoginThrottle(pool),
        typing=RedisRateLimiter(pool, 1 / TYPING_EVERY, 1, prefix="talkroom:typing:"),
        pool=pool,
    )
