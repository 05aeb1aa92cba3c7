"""Per-user message rate limits: a token bucket of ``rate`` per second, ``burst`` deep."""

from __future__ import annotations

import time
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds to wait before retrying."""
        ...


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


def create_rate_limiter(redis_url: str | None, rate: float, burst: int) -> RateLimiter:
    if not redis_url:
        return MemoryRateLimiter(rate, burst)
    from app.redis_ratelimit import RedisRateLimiter

    return RedisRateLimiter(redis_url, rate, burst)
