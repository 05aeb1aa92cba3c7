"""A bounded soak: two servers sharing PostgreSQL and a Redis of the test's own, 32
clients sending at once, while the fault script restarts Redis and SIGKILLs one
server and starts it again. At the end every client's list of message ids is the
database's history: nothing lost, nothing twice, the same order.

Clients behave like the page: on a close they reconnect (to either server) with
``?after=`` the last seq they hold, and resend what they have not seen come back
with the same client id, so a retry never saves a message twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import websockets
from scale_support import RedisProcess, history, servers, tab, user_on
from support import Browser, Server, postgres_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CLIENTS, EACH, PACE = 32, 40, 0.3
ARTICLE_RE = re.compile(
    r'id="message-(\d+)" data-seq="(\d+)"[^>]*>.*?<div class="text"><p>([^<]*)</p></div>',
    re.S,
)


@dataclass
class SoakClient:
    """One user with a tab on each server, sending ``EACH`` messages of its own."""

    name: str
    tabs: list[Browser]  # its home server first
    room: int
    received: list[tuple[int, int]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    reconnects: int = 0
    sent: int = 0  # how many of its messages it has sent at least once
    total: int = CLIENTS * EACH
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def cursor(self) -> int:
        return self.received[-1][1] if self.received else 0

    def texts(self) -> list[str]:
        return [f"{self.name}:{i}" for i in range(EACH)]

    async def connect(self) -> websockets.ClientConnection:
        """A socket on the first server that answers, resuming after our cursor."""
        while True:
            for browser in self.tabs:
                try:
                    return await browser.socket(self.room, after=self.cursor, max_queue=None)
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    continue
            await asyncio.sleep(0.1)

    def take(self, frame: str) -> None:
        for message_id, seq, text in ARTICLE_RE.findall(frame):
            self.received.append((int(message_id), int(seq)))
            self.seen.add(text)
        if len(self.received) >= self.total:
            self.complete.set()

    async def read(self, ws: websockets.ClientConnection) -> None:
        try:
            async for frame in ws:
                self.take(frame if isinstance(frame, str) else frame.decode())
        except websockets.ConnectionClosed:
            pass

    async def send(self, ws: websockets.ClientConnection, i: int) -> None:
        text = f"{self.name}:{i}"
        await ws.send(json.dumps({"message": text, "client_id": text}))

    async def run(self, deadline: float) -> None:
        """Send every message, then stay until all of everyone's have arrived."""
        while time.monotonic() < deadline:
            ws = await self.connect()
            reader = asyncio.create_task(self.read(ws))
            try:
                # After a reconnect: resend whatever did not come back (same client id).
                for i in range(self.sent):
                    if f"{self.name}:{i}" not in self.seen:
                        await self.send(ws, i)
                while self.sent < EACH:
                    await self.send(ws, self.sent)
                    self.sent += 1
                    await asyncio.sleep(PACE)
                done = asyncio.create_task(self.complete.wait())
                await asyncio.wait((reader, done), return_when=asyncio.FIRST_COMPLETED)
                done.cancel()
                if self.complete.is_set():
                    await ws.close()
                    return
            except websockets.ConnectionClosed:
                pass
            finally:
                await reader
            self.reconnects += 1
        raise AssertionError(f"{self.name} got {len(self.received)} of {self.total}")


@pytest.fixture
def soak_db() -> str:
    return postgres_url("talkroom_hardening_soak")


async def fault_script(redis_server: RedisProcess, victim: Server, log: list[str]) -> None:
    """Redis dies and comes back; then one server is SIGKILLed and started again."""
    await asyncio.sleep(2)
    await asyncio.to_thread(redis_server.stop)
    log.append("redis killed")
    await asyncio.sleep(1.5)
    await asyncio.to_thread(redis_server.start)
    log.append("redis restarted")
    await asyncio.sleep(2)
    await asyncio.to_thread(victim.stop, signal.SIGKILL)
    log.append("server SIGKILLed")
    await asyncio.sleep(1)
    await asyncio.to_thread(victim.start)
    log.append("server restarted")


async def test_soak_two_servers_thirty_two_clients_under_faults(
    tmp_path: Path, soak_db: str
) -> None:
    started = time.monotonic()
    redis_server = RedisProcess(tmp_path / "redis.log")
    redis_server.start()
    try:
        # A client away through both faults may miss more than the default re-render
        # limit; a higher one keeps every client's list comparable message by message.
        with servers(
            tmp_path, 2, soak_db, redis_server.url, message_rate="0", resync_limit="100000"
        ) as pair:
            room = pair[0].create_room("soak")
            clients = []
            for n in range(CLIENTS):
                home, other = pair[n % 2], pair[1 - n % 2]
                browser = await user_on(home, f"soak{n}")
                clients.append(SoakClient(browser.username, [browser, tab(browser, other)], room))
            total = CLIENTS * EACH
            faults: list[str] = []
            deadline = time.monotonic() + 45
            await asyncio.gather(
                fault_script(redis_server, pair[0], faults),
                *(client.run(deadline) for client in clients),
            )
            expected = await history(clients[1].tabs[0], room)
            texts = await texts_of(clients[1].tabs[0], room)
    finally:
        redis_server.stop()
    assert faults == ["redis killed", "redis restarted", "server SIGKILLed", "server restarted"]
    assert sorted(texts) == sorted(t for c in clients for t in c.texts())  # none lost or doubled
    assert [seq for _, seq in expected] == list(range(1, total + 1))
    for client in clients:
        assert client.received == expected, client.name
    reconnects = sum(c.reconnects for c in clients)
    print(
        f"\nsoak: {CLIENTS} clients on 2 servers, {total} messages saved, "
        f"{total * CLIENTS} deliveries checked, {reconnects} reconnects, faults: "
        f"{', '.join(faults)}; lost 0, duplicated 0, reordered 0; "
        f"{time.monotonic() - started:.0f} s"
    )


async def texts_of(browser: Browser, room: int) -> list[str]:
    texts: list[str] = []
    before: int | None = None
    while True:
        params = {"limit": 100, **({"before": before} if before else {})}
        page = (await browser.client.get(f"/api/rooms/{room}/messages", params=params)).json()
        if not page:
            return texts
        texts += [m["text"] for m in page]
        before = page[-1]["seq"]
