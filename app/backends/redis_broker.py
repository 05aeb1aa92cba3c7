"""Redis pub/sub between every worker on every host.

One pub/sub connection per process, read by one task. The hub subscribes a
room's channel when its first local connection joins and unsubscribes when the
last one leaves; this module counts references as well, so a second caller of
``subscribe`` cannot unsubscribe the first one's channel.

When the connection breaks (a Redis restart, a network cut), the reader
reconnects with backoff, subscribes every active channel again in one command,
waits for Redis to confirm it and only then yields ``RECONNECTED``: the hub
then repairs every local connection from the database, so what was published
while nobody listened is delivered (once: each connection's seq cursor drops
doubles).

Redis keys live in numbered databases, but pub/sub channels are shared by the
whole server: channels carry the database number (``talkroom:3:room:1``), so
two deployments on one Redis, told apart by ``/3`` and ``/4`` in their URLs,
never hear each other's rooms.

redis-py would reconnect a pub/sub connection by itself and resubscribe
silently; we turn its retries off on that connection, because a silent
reconnect hides exactly the gap that must be repaired. That connection comes
from the process's shared pool (app.backends.redis) like every other.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
from collections import Counter
from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app import metrics
from app.backends.base import RECONNECTED

logger = logging.getLogger(__name__)

# Events waiting for the hub; the hub never blocks, so this is a safety net:
# past it events are dropped and a resync is queued instead.
QUEUE_LIMIT = 10_000
# How long ``subscribe`` waits for Redis to confirm (the caller reads the
# database next and must not miss what is published in between).
CONFIRM_TIMEOUT = 5.0
# An idle connection is pinged this often, and given up when nothing at all
# came back for IDLE_LIMIT (a half-open TCP connection never errors by itself).
PING_EVERY = 5.0
IDLE_LIMIT = 15.0
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0


class RedisBroker:
    def __init__(self, pool: redis.ConnectionPool) -> None:
        # Commands (publish, ping) retry as the pool says (a few times, with backoff).
        self._redis = redis.Redis(connection_pool=pool)
        self._prefix = f"talkroom:{self._redis.connection_pool.connection_kwargs.get('db', 0)}:"
        self._channels: Counter[str] = Counter()
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()  # one command at a time on the pub/sub connection
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        # Published and not yet sent (publish): channel, data, and the sender's future.
        self._outgoing: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._publisher: asyncio.Task[None] | None = None
        self._overflowed = False
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def connect(self) -> None:
        """Start the reader; fails (like the CLI expects) when Redis does not answer."""
        await self._redis.ping()
        self._reader = asyncio.create_task(self._read(), name="redis-broker")
        # Wait for the first connection, but let the reader keep trying if it fails.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), CONFIRM_TIMEOUT)

    async def disconnect(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._close_pubsub()

    async def subscribe(self, channel: str) -> None:
        self._channels[channel] += 1
        if self._channels[channel] > 1:
            return
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmed[channel] = confirmed
        async with self._lock:
            if self._pubsub is None or not self._connected.is_set():
                # Down: the reader subscribes it on reconnect, then resyncs.
                self._confirmed.pop(channel, None)
                return
            try:
                await self._pubsub.subscribe(self._prefix + channel)
            except (RedisError, OSError):
                logger.warning("Could not subscribe %s; it follows on reconnect.", channel)
                self._confirmed.pop(channel, None)
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(confirmed), CONFIRM_TIMEOUT)
        if self._confirmed.get(channel) is confirmed:
            del self._confirmed[channel]

    async def unsubscribe(self, channel: str) -> None:
        if self._channels[channel] <= 0:
            return
        self._channels[channel] -= 1
        if self._channels[channel]:
            return
        del self._channels[channel]
        async with self._lock:
            if self._pubsub is None or not self._connected.is_set():
                return
            try:
                await self._pubsub.unsubscribe(self._prefix + channel)
            except (RedisError, OSError):
                logger.warning("Could not unsubscribe %s.", channel)

    async def publish(self, channel: str, data: bytes) -> None:
        """Send on the next pipeline: whatever was published while the last one was
        out goes in one round trip, on one pooled connection, in the order published.
        One command each would take a pooled connection each, and a room's burst of
        messages (a batch saved at once) would run the pool dry."""
        sent = asyncio.get_running_loop().create_future()
        self._outgoing.append((self._prefix + channel, data, sent))
        if self._publisher is None:
            self._publisher = asyncio.create_task(self._publish_all(), name="redis-publisher")
        await sent

    async def _publish_all(self) -> None:
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                failed: Exception | None = None
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for channel, data, _ in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except Exception as exc:  # each publisher logs it (app.announce)
                    failed = exc
                except BaseException:
                    failed = RedisError("The publisher was stopped.")
                    raise
                finally:
                    for *_, sent in batch:
                        if sent.done():
                            continue
                        if failed is None:
                            sent.set_result(None)
                        else:
                            sent.set_exception(failed)
        finally:
            self._publisher = None

    async def next_published(self) -> tuple[str, bytes]:
        return await self._queue.get()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), 2))
        except (RedisError, OSError, TimeoutError):
            return False

    # The reader

    async def _read(self) -> None:
        backoff = BACKOFF_FIRST
        broken = False
        while True:
            try:
                await self._open()
                if broken:
                    # Anything published while we were away is repaired from the database.
                    metrics.REDIS_RECONNECTS.inc()
                    logger.info(
                        "Reconnected to Redis; resubscribed %s channels.", len(self._channels)
                    )
                    self._put(RECONNECTED)
                broken = False
                backoff = BACKOFF_FIRST
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # RedisError, OSError, a timeout: all mean "reconnect"
                if self._connected.is_set() or not broken:
                    logger.warning("Lost the Redis pub/sub connection: %s", exc)
                broken = True
                self._connected.clear()
                await self._close_pubsub()
                # Jitter keeps a fleet of workers from reconnecting in lockstep.
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _open(self) -> None:
        """A fresh pub/sub connection with every active channel, confirmed by Redis."""
        async with self._lock:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.connect()
                assert pubsub.connection is not None
                # Not retried by itself: we must see every break (see the docstring).
                pubsub.connection.retry = Retry(NoBackoff(), 0)
                channels = [self._prefix + c for c in self._channels or ["keepalive"]]
                await pubsub.subscribe(*channels)
                # Redis runs one SUBSCRIBE command whole: its first confirmation
                # means every channel in it is live.
                while True:
                    reply = await pubsub.get_message(timeout=CONFIRM_TIMEOUT)
                    if reply is None:
                        raise TimeoutError("Redis did not confirm the subscription.")
                    if reply["type"] == "subscribe":
                        break
            except BaseException:
                await release(pubsub)
                raise
            self._pubsub = pubsub
            self._connected.set()
            for future in self._confirmed.values():
                if not future.done():
                    future.set_result(None)
            self._confirmed.clear()

    async def _pump(self) -> None:
        assert self._pubsub is not None
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        pinged = False
        while True:
            reply = await self._pubsub.get_message(timeout=1.0)
            now = loop.time()
            if reply is None:
                if now - last_heard > IDLE_LIMIT:
                    raise TimeoutError("Redis stopped answering on the pub/sub connection.")
                if now - last_heard > PING_EVERY and not pinged:
                    async with self._lock:
                        await self._pubsub.ping()
                    pinged = True
                continue
            last_heard, pinged = now, False
            self._handle(reply)

    def _handle(self, reply: dict[str, Any]) -> None:
        kind = reply["type"]
        if kind not in ("message", "subscribe"):
            return  # the pong to our idle ping (it has no channel), unsubscribe replies
        channel = reply["channel"].decode().removeprefix(self._prefix)
        if kind == "message":
            self._put((channel, reply["data"]))
        elif kind == "subscribe":
            future = self._confirmed.pop(channel, None)
            if future and not future.done():
                future.set_result(None)

    def _put(self, item: tuple[str, bytes]) -> None:
        if self._queue.qsize() >= QUEUE_LIMIT:
            if not self._overflowed:
                logger.warning(
                    "The hub fell %s events behind; dropping, then resyncing.", QUEUE_LIMIT
                )
            self._overflowed = True
            return
        if self._overflowed:
            self._overflowed = False
            self._queue.put_nowait(RECONNECTED)
        self._queue.put_nowait(item)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await release(pubsub)


async def release(pubsub: PubSub) -> None:
    """Close a pub/sub connection and give it back to the pool, retrying commands again."""
    if pubsub.connection is not None:
        # The pool may hand this connection to a publish next.
        retry = pubsub.connection_pool.connection_kwargs.get("retry")
        pubsub.connection.retry = copy.deepcopy(retry) if retry else Retry(NoBackoff(), 0)
    with contextlib.suppress(Exception):
        await pubsub.aclose()
