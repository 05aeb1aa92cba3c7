"""Outgoing webhooks against a real HTTP server on a local port playing the bot:
signed POSTs, replies posted as the bot, and every way an endpoint can misbehave."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from bot_support import (
    BotServer,
    Received,
    deliveries,
    echo,
    make_bot,
    reply,
    settled,
    wait_deliveries,
)
from support import ROOT, Browser, Inbox, Server, free_port, running_server

# Fast retries and a short deadline, so the misbehaving endpoints fail quickly.
HOOK_SETTINGS = {
    "message_rate": "0",
    "webhook_allow_private": "true",
    "webhook_timeout": "1.5",
    "webhook_backoff": "0.2",
    "webhook_backoff_cap": "1",
    "webhook_attempts": "3",
    "webhook_poll": "0.1",
    "webhook_queue": "20",
}


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("hooks"), **HOOK_SETTINGS) as srv:
        yield srv


@pytest.fixture
async def bot() -> AsyncIterator[BotServer]:
    server = await BotServer().start()
    yield server
    await server.stop()


async def say(browser, room: int, text: str) -> int:
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_a_mention_is_posted_signed_and_the_reply_appears_in_the_room(
    hooks: Server, bot: BotServer, make_user, unique: str
) -> None:
    room = hooks.create_room(f"room-{unique}")
    bot_id, token, secret = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        message_id = await say(alice, room, f"hello @bot{unique} <b>")
        (request,) = await bot.wait_requests(1)
        frame = await inbox.wait_for("echo: hello")
    assert request.signed_by(secret)
    assert not request.signed_by(secret + "x")
    assert abs(int(request.headers["x-talkroom-timestamp"]) - time.time()) < 30
    assert "authorization" not in request.headers and token.encode() not in request.body
    assert request.json["message"]["id"] == message_id
    assert request.json["message"]["author"] == alice.username
    assert request.json["room"] == {"id": room, "name": f"room-{unique}", "kind": "public"}
    # Posted as the bot, escaped, through the same fragment as every message.
    assert f'bot{unique}</span> <span class="bot-badge"' in frame
    assert "&lt;b&gt;" in frame and "<b>" not in frame
    rows = await wait_deliveries(hooks, bot_id, settled)
    assert [(r[1], r[2], r[3]) for r in rows] == [("done", 1, 200)]
    # The bot's reply mentions the bot itself: bots' messages tell no bot (no loop).
    await asyncio.sleep(0.5)
    assert len(bot.received) == 1


async def test_a_direct_message_to_a_bot_is_delivered(
    hooks: Server, bot: BotServer, make_user, unique: str
) -> None:
    bot_id, _, _ = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    made = await alice.api("POST", "/api/direct", json={"usernames": [f"bot{unique}"]})
    assert made.status_code == 201, made.text
    room = made.json()["id"]
    await say(alice, room, "no mention here")
    (request,) = await bot.wait_requests(1)
    assert request.json["room"]["kind"] == "direct" and request.json["room"]["name"] == ""
    rows = await wait_deliveries(hooks, bot_id, settled)
    assert rows[0][1] == "done"
    history = await alice.client.get(f"/api/rooms/{room}/messages")
    assert history.json()[0]["text"] == "echo: no mention here"


async def test_a_500_is_retried_with_backoff_then_succeeds_once(
    hooks: Server, bot: BotServer, make_user, unique: str
) -> None:
    async def flaky(request: Received, writer: asyncio.StreamWriter) -> None:
        if len(bot.received) <= 2:
            writer.write(reply(500, b"oops"))
        else:
            await echo(request, writer)

    bot.answer = flaky
    room = hooks.create_room(f"room-{unique}")
    bot_id, _, _ = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    await say(alice, room, f"@bot{unique} again")
    rows = await wait_deliveries(hooks, bot_id, settled)
    assert [(r[1], r[2], r[3]) for r in rows] == [("done", 3, 200)]
    first, second, third = (r.at for r in bot.received)
    assert second - first >= 0.15 and third - second >= 0.3  # backoff doubles
    history = (await alice.client.get(f"/api/rooms/{room}/messages")).json()
    assert [m["text"] for m in history].count(f"echo: @bot{unique} again") == 1


async def test_a_500_every_time_fails_after_the_attempts(
    hooks: Server, bot: BotServer, make_user, unique: str
) -> None:
    async def broken(request: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(reply(500, b"oops"))

    bot.answer = broken
    room = hooks.create_room(f"room-{unique}")
    bot_id, _, _ = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    await say(alice, room, f"@bot{unique} hi")
    rows = await wait_deliveries(hooks, bot_id, settled)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("failed", 3, 500, "answered 500")]
    assert len(bot.received) == 3
    # The admin page shows the bot's last deliveries and their errors.
    hooks.set_admin(alice.username)
    page = (await alice.client.get("/admin")).text
    assert f"#{rows[0][0]} failed · 3 attempts · HTTP 500 · answered 500" in page


@pytest.mark.parametrize("misbehaviour", ["hang", "slow", "huge", "redirect"])
async def test_a_misbehaving_endpoint_fails_within_bounds_and_the_room_goes_on(
    hooks: Server, bot: BotServer, make_user, unique: str, misbehaviour: str
) -> None:
    target = await BotServer().start()  # where the redirect points

    async def answer(request: Received, writer: asyncio.StreamWriter) -> None:
        if misbehaviour == "hang":
            await asyncio.sleep(30)
        elif misbehaviour == "slow":  # a byte a second, forever
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(30):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(1)
        elif misbehaviour == "huge":
            writer.write(reply(200, b"y" * 2_000_000, "text/plain"))
        else:
            head = f"HTTP/1.1 302 Found\r\nLocation: {target.url}\r\n"
            writer.write(head.encode() + b"Content-Length: 0\r\n\r\n")

    bot.answer = answer
    room = hooks.create_room(f"room-{unique}")
    bot_id, _, _ = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        await say(alice, room, f"@bot{unique} are you there")
        await bot.wait_requests(1)
        # While the endpoint misbehaves, the room is as quick as ever.
        started = time.monotonic()
        await say(alice, room, "still chatting")
        await inbox.wait_for("still chatting")
        assert time.monotonic() - started < 1
        rows = await wait_deliveries(hooks, bot_id, settled, timeout=30)
    (row,) = rows
    expected = {
        "hang": ("failed", 3, None, "no complete answer within 1.5 s"),
        "slow": ("failed", 3, None, "no complete answer within 1.5 s"),
        "huge": ("failed", 1, 200, "reply over 65536 bytes"),
        "redirect": ("failed", 1, 302, "redirect (302) not followed"),
    }[misbehaviour]
    assert row[1:] == expected
    assert target.received == []  # nothing followed the redirect
    await target.stop()
    history = (await alice.client.get(f"/api/rooms/{room}/messages")).json()
    assert all(m["author"] == alice.username for m in history)  # no reply was posted


async def test_a_bot_mentioned_without_end_keeps_a_bounded_queue(
    hooks: Server, bot: BotServer, make_user, unique: str
) -> None:
    async def hang(request: Received, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    bot.answer = hang
    room = hooks.create_room(f"room-{unique}")
    bot_id, _, _ = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    started = time.monotonic()
    for n in range(60):
        await say(alice, room, f"@bot{unique} number {n}")
    assert time.monotonic() - started < 15  # the room is unaffected

    def trimmed(rows: list) -> bool:
        return sum(r[1] == "pending" for r in rows) <= 20 and any(r[1] == "dropped" for r in rows)

    rows = await wait_deliveries(hooks, bot_id, trimmed)
    dropped = [r[0] for r in rows if r[1] == "dropped"]
    waiting = [r[0] for r in rows if r[1] in ("pending", "claimed")]
    assert max(dropped) < min(waiting[1:])  # the oldest went first
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{hooks.base}/metrics")).text
    assert 'talkroom_webhook_deliveries_total{outcome="dropped"}' in metrics
    assert "talkroom_webhook_queue_depth" in metrics
    # One at a time, oldest first: a bot's deliveries keep their order. A hung
    # delivery is tried again after its timeout (on a slow machine within the
    # test), so a message may repeat, but only right after itself.
    tried = [request.json["message"]["id"] for request in bot.received]
    assert tried == sorted(tried)


async def test_a_restart_mid_delivery_delivers_once(
    tmp_path: Path, bot: BotServer, unique: str
) -> None:
    release = asyncio.Event()

    async def held_first(request: Received, writer: asyncio.StreamWriter) -> None:
        if len(bot.received) == 1:
            await release.wait()  # the server is stopped meanwhile
            return
        await echo(request, writer)

    bot.answer = held_first
    settings = HOOK_SETTINGS | {"webhook_timeout": "20"}
    with running_server(tmp_path / "restart", **settings) as srv:
        room = srv.create_room("restart")
        bot_id, _, _ = make_bot(srv, f"bot{unique}", bot.url)
        alice = Browser(srv)
        assert (await alice.register(f"alice{unique}")).status_code == 303
        await say(alice, room, f"@bot{unique} survive this")
        await bot.wait_requests(1)
        srv.stop()
        assert [r[1] for r in await deliveries(srv, bot_id)] == ["pending"]  # given back
        release.set()
        srv.start()
        await bot.wait_requests(2)
        rows = await wait_deliveries(srv, bot_id, settled)
        assert [r[1] for r in rows] == ["done"]
        history = (await alice.client.get(f"/api/rooms/{room}/messages")).json()
        assert [m["text"] for m in history].count(f"echo: @bot{unique} survive this") == 1
        await alice.close()


async def test_the_readme_echo_bot_answers_and_refuses_a_forged_signature(
    hooks: Server, make_user, unique: str
) -> None:
    port = free_port()
    bot_id, _, secret = make_bot(hooks, f"echo{unique}", f"http://127.0.0.1:{port}/")
    env = os.environ | {"TALKROOM_BOT_SECRET": secret, "PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "docs" / "echo_bot.py"), env=env
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            body = json.dumps({"message": {"text": "forged"}, "room": {}})
            stamp = str(int(time.time()))
            forged = await client.post(
                f"http://127.0.0.1:{port}/",
                content=body,
                headers={"X-Talkroom-Timestamp": stamp, "X-Talkroom-Signature": "sha256=00"},
            )
            assert forged.status_code == 401
        room = hooks.create_room(f"room-{unique}")
        alice = await make_user(target=hooks)
        await say(alice, room, f"@echo{unique} ping")
        rows = await wait_deliveries(hooks, bot_id, settled)
        assert [r[1:] for r in rows] == [("done", 1, 200, "")]
        history = (await alice.client.get(f"/api/rooms/{room}/messages")).json()
        assert history[0]["text"] == f"echo: @echo{unique} ping"  # newest first
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 5)


# SSRF: the shared server keeps the default, private addresses refused.


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "is a loopback address"),  # a name, resolved and then checked
        ("[::1]", "::1 is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is unspecified"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
    ],
)
async def test_a_webhook_to_a_private_address_is_refused_without_a_request(
    server: Server, bot: BotServer, make_user, unique: str, host: str, why: str
) -> None:
    room = server.create_room(f"room-{unique}")
    url = bot.url.replace("127.0.0.1", host)
    if host == "169.254.169.254":
        url = "http://169.254.169.254/latest/meta-data/"
    bot_id, _, _ = make_bot(server, f"bot{unique}", url)
    alice = await make_user()
    await say(alice, room, f"@bot{unique} fetch the secrets")
    rows = await wait_deliveries(server, bot_id, settled)
    (row,) = rows
    assert row[1:4] == ("failed", 1, None)  # refused at once, never retried
    assert why in row[4]
    assert bot.received == []


@pytest.fixture(scope="module")
def two_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Two servers (each with its delivery worker) over one PostgreSQL and Redis."""
    from scale_support import redis_db, servers
    from support import postgres_url

    database = postgres_url("talkroom_webhooks")
    with servers(
        tmp_path_factory.mktemp("two"), 2, database, redis_db(10), **HOOK_SETTINGS
    ) as started:
        yield started


async def test_two_workers_on_postgres_deliver_each_message_exactly_once_in_order(
    two_on_postgres: list[Server], unique: str
) -> None:
    first, second = two_on_postgres
    bots = [await BotServer().start() for _ in range(2)]

    async def slow_echo(request: Received, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)  # long enough for the other worker to try to cut in
        await echo(request, writer)

    made = []
    for n, bot in enumerate(bots):
        bot.answer = slow_echo
        made.append(make_bot(first, f"bot{n}{unique}", bot.url)[0])
    room = first.create_room(f"room-{unique}")
    alice, bob = Browser(first), Browser(second)
    assert (await alice.register(f"alice{unique}")).status_code == 303
    assert (await bob.register(f"bob{unique}")).status_code == 303
    for n in range(10):  # through both servers, so both workers see work
        for who in (alice, bob):
            await say(who, room, f"@bot0{unique} @bot1{unique} {who.username} {n}")
    for bot_id in made:
        rows = await wait_deliveries(first, bot_id, lambda r: len(r) == 20 and settled(r), 60)
        assert {row[1] for row in rows} == {"done"}
        assert {row[2] for row in rows} == {1}  # each made in one attempt
    for bot in bots:
        ids = [int(request.headers["x-talkroom-delivery"]) for request in bot.received]
        assert len(ids) == 20 and len(set(ids)) == 20  # exactly once
        messages = [request.json["message"]["id"] for request in bot.received]
        assert messages == sorted(messages)  # in order
        assert bot.most_active == 1  # one at a time per bot, across both workers
        await bot.stop()
    history = (await alice.client.get(f"/api/rooms/{room}/messages", params={"limit": 100})).json()
    assert sum(m["text"].startswith("echo: ") for m in history) == 40  # one reply each
    await alice.close()
    await bob.close()


async def test_a_bot_taken_out_of_a_private_room_meanwhile_does_not_reply_there(
    hooks: Server, bot: BotServer, make_user, unique: str
) -> None:
    answer_now = asyncio.Event()

    async def held(request: Received, writer: asyncio.StreamWriter) -> None:
        await answer_now.wait()
        await echo(request, writer)

    bot.answer = held
    bot_id, _, _ = make_bot(hooks, f"bot{unique}", bot.url)
    alice = await make_user(target=hooks)
    hooks.set_admin(alice.username)  # who may make rooms
    made = await alice.api("POST", "/api/rooms", json={"name": f"p-{unique}", "kind": "private"})
    assert made.status_code == 201, made.text
    room = made.json()["id"]
    added = await alice.api("PUT", f"/api/rooms/{room}/members/{bot_id}")
    assert added.status_code in (200, 201, 204), added.text
    await say(alice, room, f"@bot{unique} secret plans")
    await bot.wait_requests(1)
    removed = await alice.api("DELETE", f"/api/rooms/{room}/members/{bot_id}")
    assert removed.status_code in (200, 204), removed.text
    answer_now.set()
    rows = await wait_deliveries(hooks, bot_id, settled)
    assert [(r[1], r[4]) for r in rows] == [
        ("done", "reply not posted: the bot cannot read the room")
    ]
    history = (await alice.client.get(f"/api/rooms/{room}/messages")).json()
    assert [m["author"] for m in history] == [alice.username]
