"""Every backend contract, run against memory and against a real Redis.

The memory backends are what one process runs on and the Redis ones what a
fleet runs on; the app must not tell them apart, so both get the same tests.
The tests after the contracts cover what only Redis does: several workers, lost
connections, lost data. Redis is ``TALKROOM_TEST_REDIS`` (skipped when it is not
reachable, a failure under CI=true).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from scale_support import redis_db

from app.backends import RECONNECTED, Backends, LoginThrottle, create_backends
from app.backends.memory import MemoryLoginThrottle
from app.settings import Settings

DB = 15  # this module's Redis database, emptied for every test


def make(kind: str, tmp_path: Path, **settings: Any) -> Backends:
    redis_url = redis_db(DB) if kind == "redis" else None
    return create_backends(Settings(data_dir=tmp_path, redis_url=redis_url, **settings))


@pytest.fixture(params=["memory", "redis"])
async def backends(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backends]:
    made = make(request.param, tmp_path, message_rate=2.0, message_burst=3, presence_ttl=1)
    await made.broker.connect()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def redis_backends(tmp_path: Path) -> AsyncIterator[Backends]:
    made = make("redis", tmp_path, presence_ttl=1)
    await made.broker.connect()
    try:
        yield made
    finally:
        await made.close()


async def received(backends: Backends, timeout: float = 5) -> tuple[str, bytes]:
    return await asyncio.wait_for(backends.broker.next_published(), timeout)


# The broker


async def test_a_subscriber_hears_its_channels_only(backends: Backends) -> None:
    broker = backends.broker
    await broker.subscribe("room:1")
    await broker.publish("room:2", b"not for us")
    await broker.publish("room:1", b"hello")
    assert await received(backends) == ("room:1", b"hello")
    assert await broker.ping()


async def test_an_unsubscribed_channel_goes_quiet(backends: Backends) -> None:
    broker = backends.broker
    await broker.subscribe("room:1")
    await broker.subscribe("room:2")
    await broker.unsubscribe("room:1")
    await broker.publish("room:1", b"nobody listens")
    await broker.publish("room:2", b"still here")
    assert await received(backends) == ("room:2", b"still here")


async def test_events_arrive_in_the_order_published(backends: Backends) -> None:
    await backends.broker.subscribe("room:1")
    for n in range(20):
        await backends.broker.publish("room:1", b"%d" % n)
    assert [await received(backends) for _ in range(20)] == [
        ("room:1", b"%d" % n) for n in range(20)
    ]


async def test_a_thousand_publishes_at_once_all_arrive_in_order(backends: Backends) -> None:
    """A batch of saved messages is published at once, one task each: with Redis
    they share pipelines (one pooled connection), never one connection each."""
    await backends.broker.subscribe("room:1")
    await asyncio.gather(*(backends.broker.publish("room:1", b"%d" % n) for n in range(1000)))
    assert [await received(backends) for _ in range(1000)] == [
        ("room:1", b"%d" % n) for n in range(1000)
    ]


# Presence


async def test_a_user_joins_with_the_first_socket_and_leaves_with_the_last(
    backends: Backends,
) -> None:
    presence = backends.presence
    assert await presence.join(1, "ada") is True
    assert await presence.join(1, "ada") is False  # a second tab
    assert await presence.leave(1, "ada") is False
    assert await presence.members(1) == ["ada"]
    assert await presence.leave(1, "ada") is True
    assert await presence.leave(1, "ada") is False  # nothing left to take out
    assert await presence.members(1) == []
    assert await presence.counts() == {}


async def test_counts_are_users_per_room_and_members_sort_without_case(
    backends: Backends,
) -> None:
    presence = backends.presence
    for room_id, name in [(1, "bob"), (1, "Carl"), (1, "bob"), (2, "cy"), (1, "ada")]:
        await presence.join(room_id, name)
    assert await presence.counts() == {1: 3, 2: 1}
    assert await presence.members(1) == ["ada", "bob", "Carl"]
    assert await presence.members(3) == []


async def test_tending_announces_nothing_while_everyone_stays(backends: Backends) -> None:
    presence = backends.presence
    await presence.join(1, "ada")
    assert await presence.tend() == []
    assert await presence.members(1) == ["ada"]


# The message rate limit: 2 per second, 3 deep


async def test_the_burst_passes_and_the_next_message_waits(backends: Backends) -> None:
    limiter = backends.limiter
    assert [await limiter.hit("user:1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.hit("user:1")
    assert 0.3 < wait <= 0.5  # one token at 2 per second
    assert await limiter.hit("user:2") == 0.0  # every key has a bucket of its own
    await asyncio.sleep(wait + 0.05)
    assert await limiter.hit("user:1") == 0.0


async def test_a_rate_of_zero_limits_nothing(tmp_path: Path, backends: Backends) -> None:
    kind = "redis" if backends.shared else "memory"
    unlimited = make(kind, tmp_path, message_rate=0.0, message_burst=1)
    try:
        assert [await unlimited.limiter.hit("user:1") for _ in range(5)] == [0.0] * 5
    finally:
        await unlimited.close()


# The login throttle


async def test_failed_logins_for_an_account_make_it_wait_until_a_success(
    backends: Backends,
) -> None:
    throttle = backends.login_throttle
    for _ in range(4):
        await throttle.failed(account="ada", address="10.0.0.1")
    assert await throttle.retry_after(account="ada", address="10.0.0.1") == 0.0
    await throttle.failed(account="ada", address="10.0.0.1")
    assert 290 < await throttle.retry_after(account="ada", address="10.0.0.2") <= 300
    assert await throttle.retry_after(account="bob", address="10.0.0.1") == 0.0
    await throttle.succeeded(account="ada")
    assert await throttle.retry_after(account="ada", address="10.0.0.1") == 0.0


async def test_failed_logins_from_an_address_make_every_account_wait(
    backends: Backends,
) -> None:
    throttle = backends.login_throttle
    for n in range(30):
        await throttle.failed(account=f"user{n}", address="10.0.0.9")
    assert await throttle.retry_after(account="fresh", address="10.0.0.9") > 290
    assert await throttle.retry_after(account="fresh", address="10.0.0.1") == 0.0


async def test_the_throttle_takes_its_limits_as_arguments(backends: Backends) -> None:
    throttle: LoginThrottle
    if backends.pool is None:
        throttle = MemoryLoginThrottle(per_account=2, per_address=3, window=1.0)
    else:
        from app.backends.redis import RedisLoginThrottle

        throttle = RedisLoginThrottle(backends.pool, per_account=2, per_address=3, window=1.0)
    await throttle.failed(account="ada", address="a")
    assert await throttle.retry_after(account="ada", address="b") == 0.0
    await throttle.failed(account="ada", address="a")
    assert 0 < await throttle.retry_after(account="ada", address="b") <= 1.0
    await throttle.failed(account="bob", address="a")
    assert 0 < await throttle.retry_after(account="cy", address="a") <= 1.0
    await asyncio.sleep(1.1)  # the window passes
    assert await throttle.retry_after(account="ada", address="a") == 0.0


# What only Redis does


async def test_the_broker_counts_subscriptions(redis_backends: Backends) -> None:
    # Two local callers of one channel: the first to leave must not silence the other.
    broker = redis_backends.broker
    await broker.subscribe("room:1")
    await broker.subscribe("room:1")
    await broker.unsubscribe("room:1")
    await broker.publish("room:1", b"still subscribed")
    assert await received(redis_backends) == ("room:1", b"still subscribed")


async def test_an_idle_connection_is_pinged_without_reconnecting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, redis_backends: Backends
) -> None:
    # The pong to the keepalive ping once looked like a broken connection: every
    # quiet 5 s each worker reconnected and resynced every socket from the database.
    from app.backends import redis_broker

    monkeypatch.setattr(redis_broker, "PING_EVERY", 0.2)
    broker = redis_backends.broker
    await broker.subscribe("room:1")
    await asyncio.sleep(2.5)  # quiet: about two pings, each answered
    await broker.publish("room:1", b"after the quiet")
    first = await received(redis_backends)
    assert first != RECONNECTED
    assert first == ("room:1", b"after the quiet")
    assert "Lost the Redis pub/sub connection" not in caplog.text


async def test_a_lost_pubsub_connection_says_so_and_resubscribes(
    redis_backends: Backends,
) -> None:
    # A silent reconnect would hide the events published meanwhile: the hub must
    # hear RECONNECTED to repair its sockets from the database.
    import redis.asyncio as redis

    broker = redis_backends.broker
    await broker.subscribe("room:1")
    admin = redis.Redis(connection_pool=redis_backends.pool)
    # Only this module's listener: other servers may share this Redis.
    ours = [c["id"] for c in await admin.client_list(_type="pubsub") if c["db"] == str(DB)]
    assert len(ours) == 1
    assert await admin.client_kill_filter(_id=ours[0]) == 1
    assert await received(redis_backends, timeout=10) == RECONNECTED
    await broker.publish("room:1", b"heard again")
    assert await received(redis_backends) == ("room:1", b"heard again")


async def test_presence_is_shared_and_a_dead_worker_is_reaped(
    tmp_path: Path, redis_backends: Backends
) -> None:
    # Two workers on one Redis; the second is killed without closing.
    other = make("redis", tmp_path, presence_ttl=1)
    here, there = redis_backends.presence, other.presence
    try:
        assert await here.join(1, "ada") is True
        assert await there.join(1, "ada") is False  # already in, through the first worker
        assert await there.join(1, "bob") is True
        assert await here.members(1) == ["ada", "bob"]
        assert await here.tend() == [] and await there.tend() == []
        await asyncio.sleep(1.3)  # the second worker stops beating: its ttl runs out
        assert await here.tend() == [(1, "leave", "bob")]
        assert await here.members(1) == ["ada"]
    finally:
        assert other.pool is not None
        await other.pool.aclose()  # no close(): a killed worker retires nothing


async def test_a_closed_worker_takes_its_sockets_out_at_once(
    tmp_path: Path, redis_backends: Backends
) -> None:
    other = make("redis", tmp_path, presence_ttl=60)
    await other.presence.join(1, "bob")
    assert await redis_backends.presence.members(1) == ["bob"]
    await other.close()
    assert await redis_backends.presence.members(1) == []


async def test_presence_is_written_back_after_redis_lost_it(redis_backends: Backends) -> None:
    presence = redis_backends.presence
    await presence.join(1, "ada")
    redis_db(DB)  # empties the database, as a Redis restart without persistence does
    assert await presence.members(1) == []
    assert await presence.tend() == [(1, "join", "ada")]
    assert await presence.members(1) == ["ada"]
    assert await presence.counts() == {1: 1}


async def test_the_limits_count_locally_while_redis_is_down(tmp_path: Path) -> None:
    # A port nothing listens on: every command fails at once.
    # A slow rate: each failing command takes a few retries' time to give up.
    down = create_backends(
        Settings(
            data_dir=tmp_path, redis_url="redis://127.0.0.1:9/0", message_rate=0.1, message_burst=2
        )
    )
    try:
        assert [await down.limiter.hit("user:1") for _ in range(2)] == [0.0, 0.0]
        assert await down.limiter.hit("user:1") > 5  # the burst, counted here
        for _ in range(5):
            await down.login_throttle.failed(account="ada", address="a")
        assert await down.login_throttle.retry_after(account="ada", address="a") > 290
    finally:
        assert down.pool is not None
        await down.pool.aclose()


# One pool for all of them


async def test_every_redis_backend_shares_one_pool_which_close_empties(tmp_path: Path) -> None:
    """Five clients per worker before app/backends; now the broker's pub/sub and one
    pooled connection carry everything, and close() hangs them all up."""
    import redis.asyncio as redis

    watcher = redis.Redis.from_url(redis_db(DB))

    async def ours() -> int:
        clients = await watcher.client_list()
        return sum(1 for c in clients if c["db"] == str(DB)) - 1  # less the watcher

    try:
        before = await ours()
        made = make("redis", tmp_path, message_rate=2.0, message_burst=3, presence_ttl=1)
        await made.broker.connect()
        await made.broker.subscribe("room:1")
        # One at a time, as a worker's event loop mostly asks: one pooled connection.
        await made.broker.publish("room:1", b"hi")
        assert await received(made) == ("room:1", b"hi")
        await made.presence.join(1, "alice")
        assert await made.presence.counts() == {1: 1}
        assert await made.limiter.hit("user:1") == 0.0
        await made.login_throttle.failed(account="alice", address="127.0.0.1")
        assert await made.login_throttle.retry_after(account="alice", address="127.0.0.1") == 0
        assert await ours() - before == 2  # the pub/sub connection, and the pool's one
        await made.close()
        for _ in range(50):
            if await ours() == before:
                break
            await asyncio.sleep(0.1)
        assert await ours() == before
    finally:
        await watcher.aclose()
