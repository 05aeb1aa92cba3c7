"""What the rest of the app asks of its backends: pub/sub, presence and two limits.

Each protocol has a memory implementation (one process) and a Redis one (every
worker on every host); ``app.backends.create_backends`` picks them from Settings.
"""

from __future__ import annotations

from typing import Protocol

# Yielded by next_published() after a reconnect: events may have been lost.
RECONNECTED = ("", b"")

# Failed logins allowed per account and per address within the window (seconds),
# the one definition both login throttles default to.
LOGIN_PER_ACCOUNT, LOGIN_PER_ADDRESS, LOGIN_WINDOW = 5, 30, 300.0

# A user's "is typing" goes out at most once per this many seconds per room, across
# workers: a limiter of one token per TYPING_EVERY, one deep.
TYPING_EVERY = 2.0

Change = tuple[int, str, str]  # room, "join" or "leave", username


class Broker(Protocol):
    """Publish/subscribe between processes.

    The hub owns one broker per process, subscribes a channel when its first
    local listener arrives and unsubscribes when the last one leaves.
    """

    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, data: bytes) -> None: ...
    async def next_published(self) -> tuple[str, bytes]: ...
    async def ping(self) -> bool: ...


class Presence(Protocol):
    """Who is online in which room.

    A user is in a room while at least one of their sockets is; ``join`` says
    whether this socket brought them in and ``leave`` whether it took them out,
    so a user with many tabs joins once and leaves once.
    """

    async def join(self, room_id: int, username: str) -> bool: ...
    async def leave(self, room_id: int, username: str) -> bool: ...
    async def counts(self) -> dict[int, int]: ...
    async def members(self, room_id: int) -> list[str]: ...
    async def tend(self) -> list[Change]:
        """Periodic upkeep; returns (room, "join" or "leave", username) to announce."""
        ...

    async def close(self) -> None: ...


class RateLimiter(Protocol):
    """Per-user message rate limits: a token bucket of ``rate`` per second, ``burst`` deep."""

    async def hit(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds to wait before retrying."""
        ...


class LoginThrottle(Protocol):
    """Too many failed logins for one account, or from one address, make further attempts wait."""

    async def retry_after(self, *, account: str, address: str) -> float:
        """Seconds to wait before this login may be tried; 0 when it may be now."""
        ...

    async def failed(self, *, account: str, address: str) -> None: ...

    async def succeeded(self, *, account: str) -> None: ...
