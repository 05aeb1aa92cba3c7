"""RedisBroker against a real Redis: what an idle pub/sub connection does."""

from __future__ import annotations

import asyncio

import pytest
from scale_support import redis_db

from app.backends import RECONNECTED, redis_broker
from app.backends.redis import create_pool


async def test_an_idle_connection_is_pinged_without_reconnecting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The pong to the keepalive ping once looked like a broken connection: every
    # quiet 5 s each worker reconnected and resynced every socket from the database.
    monkeypatch.setattr(redis_broker, "PING_EVERY", 0.2)
    pool = create_pool(redis_db(15))
    broker = redis_broker.RedisBroker(pool)
    await broker.connect()
    try:
        await broker.subscribe("room:1")
        await asyncio.sleep(2.5)  # quiet: about two pings, each answered
        await broker.publish("room:1", b"after the quiet")
        first = await asyncio.wait_for(broker.next_published(), 5)
        assert first != RECONNECTED
        assert first == ("room:1", b"after the quiet")
        assert "Lost the Redis pub/sub connection" not in caplog.text
    finally:
        await broker.disconnect()
        await pool.aclose()
