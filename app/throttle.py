"""Login throttling: too many failed logins for one account, or from one
address, make further attempts wait.

Kept in each process's memory: with several workers an attacker gets a few
more tries (one budget per worker), which still caps guessing at a handful a
minute per account.
"""

from __future__ import annotations

import time
from collections import deque


class LoginThrottle:
    def __init__(self, *, per_account: int = 5, per_address: int = 30, window: float = 300) -> None:
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

    def retry_after(self, *, account: str, address: str) -> float:
        """Seconds to wait before this login may be tried; 0 when it may be now."""
        now = time.monotonic()
        waits = [0.0]
        for kind, value in (("account", account), ("address", address)):
            failures = self._recent((kind, value), now)
            if len(failures) >= self.limits[kind]:
                waits.append(failures[0] + self.window - now)
        return max(waits)

    def failed(self, *, account: str, address: str) -> None:
        now = time.monotonic()
        for kind, value in (("account", account), ("address", address)):
            self._failures.setdefault((kind, value), deque()).append(now)

    def succeeded(self, *, account: str) -> None:
        self._failures.pop(("account", account), None)
