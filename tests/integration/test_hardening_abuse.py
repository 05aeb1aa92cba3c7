"""Abuse: a peer that vanished without closing, and a client that stops reading.

No timings are asserted: each test waits (with a generous bound) for what must
happen and checks what was delivered.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

import httpx
import pytest
import websockets
from scale_support import RedisProcess, metric, scrape, servers, tab, user_on
from support import PASSWORD, Browser, Inbox, Server, postgres_url, running_server
from websockets.exceptions import ConnectionClosed


def silent_socket(srv: Server, path: str, cookie: str) -> socket.socket:
    """A WebSocket handshake over a bare TCP socket that then never reads or writes,
    so it never answers a ping: a peer that is gone without a goodbye."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Cookie: {cookie}\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def frames_until_close(sock: socket.socket) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each frame the server sends, up to its close frame."""
    buffer, frames = b"", []
    while not frames or frames[-1][0] != 0x8:
        chunk = sock.recv(65536)
        assert chunk, f"the connection ended without a close frame: {frames}"
        buffer += chunk
        while len(buffer) >= 2:
            size, start = buffer[1] & 0x7F, 2  # server frames are not masked
            if size == 126:
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                break
            frames.append((buffer[0] & 0x0F, buffer[start : start + size]))
            buffer = buffer[start + size :]
    return frames


async def test_a_socket_that_never_answers_pings_is_closed(tmp_path: Path) -> None:
    with running_server(tmp_path, ws_ping_interval="0.5", ws_ping_timeout="0.5") as srv:
        room = srv.create_room("idle")
        gone, alive = await user_on(srv, "gone_peer"), await user_on(srv, "alive_peer")
        watcher = Inbox(await alive.socket(room))  # answers pings by itself
        await watcher.wait_for('id="members"')
        silent = silent_socket(srv, f"/ws/rooms/{room}", gone.cookie_header)
        await watcher.wait_for(f'data-notice="join" data-user="{gone.username}"')
        # Pinged, then let go: a close frame (1011, no pong in time), and then
        # (once the TCP connection is gone) its leave goes out.
        frames = await asyncio.to_thread(frames_until_close, silent)
        assert 0x9 in [opcode for opcode, _ in frames]
        assert int.from_bytes(frames[-1][1][:2], "big") == 1011, frames[-1]
        silent.close()
        await watcher.wait_for(f'data-notice="leave" data-user="{gone.username}"', timeout=20)
        # The peer that answers its pings is still there.
        await alive.api("POST", f"/api/rooms/{room}/messages", json={"text": "still on"})
        await watcher.wait_for("still on")
        await watcher.ws.close()
        for browser in (gone, alive):
            await browser.close()


async def stuck_socket(browser: Browser, room: int) -> websockets.ClientConnection:
    """A socket whose client stops reading once it has joined: a tiny receive buffer,
    reading paused, and no keepalive of its own."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", browser.server.port))
    ws = await websockets.connect(
        browser.server.ws_url(f"/ws/rooms/{room}"),
        sock=sock,
        additional_headers={"Cookie": browser.cookie_header},
        ping_interval=None,
        max_size=None,
    )
    await Inbox(ws).wait_for('id="members"')
    ws.transport.pause_reading()
    return ws


async def slow_clients_closed(srv: Server) -> float:
    return metric(await scrape(srv), "talkroom_slow_clients_closed_total")


async def post_many(sender: Browser, room: int, first: int, count: int) -> None:
    url = f"/api/rooms/{room}/messages"
    for n in range(first, first + count):
        assert (await sender.api("POST", url, json={"text": f"{n} " + "x" * 3000})).is_success


async def test_a_stuck_reader_is_closed_with_1013_and_fifty_others_get_everything(
    tmp_path: Path,
) -> None:
    """The stuck client keeps writing (junk frames, each answered to it alone) but never
    reads, so its kernel buffers (megabytes on loopback) and then its outbox fill up
    without making the test push megabytes to the fifty others as well."""
    with running_server(tmp_path, outbox_size="8", message_rate="0") as srv:
        room = srv.create_room("stuck")
        readers = [await user_on(srv, f"reader{n}") for n in range(10)]
        # Five tabs each, without a client-side queue limit: one event loop reads all 50.
        sockets = [await r.socket(room, after=0, max_queue=None) for r in readers for _ in range(5)]
        inboxes = [Inbox(ws) for ws in sockets]
        for inbox in inboxes:
            await inbox.wait_for('id="members"')
        stuck = await stuck_socket(await user_on(srv, "stuck_reader"), room)
        sender = await user_on(srv, "flooder")

        await post_many(sender, room, 0, 20)
        junk = 0
        while await slow_clients_closed(srv) < 1:
            assert junk < 200_000, "the stuck reader was never closed"
            for _ in range(2000):
                await stuck.send("not json")
            junk += 2000
        await post_many(sender, room, 20, 20)  # the room goes on

        got = await asyncio.gather(*(inbox.wait_messages(40, timeout=60) for inbox in inboxes))
        for messages in got:
            assert [seq for _, seq in messages] == list(range(1, 41))
        # A client that only paused gets the reason when it reads again.
        stuck.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(30):
                while True:
                    await stuck.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert await slow_clients_closed(srv) == 1  # only the stuck one
        print(f"\nstuck reader closed after ~{junk} unread replies; 50 readers got all 40")
        for ws in sockets:
            await ws.close()
        async with httpx.AsyncClient(base_url=srv.base) as client:
            assert (await client.get("/healthz")).status_code == 200


@pytest.fixture
def limit_db() -> str:
    return postgres_url("talkroom_hardening_rate")


@pytest.mark.redis
@pytest.mark.postgres
async def test_the_message_rate_limit_holds_across_servers(tmp_path: Path, limit_db: str) -> None:
    """A burst of 3 at 0.2 per second: spreading the sends over two servers gets no
    more through, and the sender is told why."""
    limits = {"message_rate": "0.2", "message_burst": "3"}
    with (
        RedisProcess(tmp_path / "redis.log") as redis_server,
        servers(tmp_path, 2, limit_db, redis_server.url, **limits) as (a, b),
    ):
        room = a.create_room("limited")
        alice = await user_on(a, "limited_alice")
        tabs = [alice, tab(alice, b)]
        url = f"/api/rooms/{room}/messages"
        codes = [
            (await tabs[i % 2].api("POST", url, json={"text": f"{i}"})).status_code
            for i in range(3)
        ]
        assert codes == [201, 201, 201]
        over = await tabs[1].api("POST", url, json={"text": "one too many"})
        assert over.status_code == 429 and "too fast" in over.json()["detail"]
        async with await tabs[0].socket(room) as ws:
            inbox = Inbox(ws)
            await inbox.wait_for('id="members"')
            await ws.send('{"message": "and over the socket"}')
            assert "too fast" in await inbox.wait_for('id="chat-error"')
        texts = [m["text"] for m in (await alice.api("GET", url)).json()]
        assert sorted(texts) == ["0", "1", "2"]
        await alice.close()


@pytest.fixture
def login_db() -> str:
    return postgres_url("talkroom_hardening_login")


@pytest.mark.redis
@pytest.mark.postgres
async def test_the_login_throttle_holds_across_servers(tmp_path: Path, login_db: str) -> None:
    """Five wrong passwords for one account, spread over two servers, use up the
    account's one budget: a sixth try on either is refused with 429."""
    with (
        RedisProcess(tmp_path / "redis.log") as redis_server,
        servers(tmp_path, 2, login_db, redis_server.url) as (a, b),
    ):
        owner = await user_on(a, "guessed_dave")
        guessers = [Browser(a), Browser(b)]
        codes = [
            (await guessers[i % 2].login("guessed_dave", f"guess {i}")).status_code
            for i in range(5)
        ]
        assert codes == [400] * 5
        for guesser in guessers:
            refused = await guesser.login("guessed_dave", PASSWORD)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) > 0
        for browser in (owner, *guessers):
            await browser.close()
