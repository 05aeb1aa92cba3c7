"""Login throttling: too many failed logins for one account, or from one
address, make further attempts wait.

In memory for one process; with Redis (app.redis_throttle) the failures are
counted once for every worker and host, so adding workers adds no guesses.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

PER_ACCOUNT, PER_ADDRESS, WINDOW = 5, 30, 300.0


class LoginThrottle(Protocol):
    async def retry_after(self, *, account: str, address: str) -> float:
        """Seconds to wait before this login may be tried; 0 when it may be now."""
        ...

    async def failed(self, *, account: str, address: str) -> None: ...

    async def succeeded(self, *, account: str) -> None: ...


class MemoryLoginThrottle:
    def __init__(
        self,
        *,
        per_account: int = PER_ACCOUNT,
        per_address: int = PER_ADDRESS,
        window: float = WINDOW,
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


def create_login_throttle(redis_url: str | None) -> LoginThrottle:
    if redis_url:
        from app.redis_throttle import RedisLoginThrottle

        return RedisLoginThrottle(redis_url)
    return MemoryLoginThrottle()
