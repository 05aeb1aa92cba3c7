"""Faults over PostgreSQL and Redis: a worker killed mid-burst, and a database that
goes away and comes back.

The database outage is a TCP proxy in this test process in front of the shared
PostgreSQL: cutting it is an outage for the one server behind it, and nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from scale_support import (
    RedisProcess,
    eventually,
    health,
    history,
    scrape,
    servers,
    tab,
    user_on,
)
from support import Browser, Inbox, free_port, postgres_url, running_server
from websockets.exceptions import ConnectionClosed

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class TcpProxy:
    """Forwards a local port to PostgreSQL, on a thread of its own (the server it
    serves is started with blocking calls). ``cut`` drops every connection and
    refuses new ones until ``restore``."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.cut_off = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    def cut(self) -> None:
        def abort_all() -> None:
            self.cut_off = True
            for writer in tuple(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(abort_all)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "cut_off", False)

    @contextlib.contextmanager
    def running(self) -> Iterator[TcpProxy]:
        self._thread.start()
        self._ready.wait(5)
        try:
            yield self
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def send(text: str) -> str:
    return json.dumps({"message": text})


def texts(inbox: Inbox) -> list[str]:
    return re.findall(r'<div class="text"><p>(.*?)</p></div>', "".join(inbox.frames), re.S)


@pytest.fixture
def outage_db() -> str:
    return postgres_url("talkroom_hardening_pg_outage")


async def test_postgresql_down_senders_get_a_clear_error_and_it_recovers(
    tmp_path: Path, outage_db: str
) -> None:
    url = outage_db
    target = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
    with TcpProxy(target).running() as proxy:
        proxied = url.replace(f":{target}/", f":{proxy.port}/")
        with running_server(tmp_path, database_url=proxied, message_rate="0") as srv:
            room = srv.create_room("outage")
            alice = await user_on(srv, "pg_alice")
            ws = await alice.socket(room, after=0)
            inbox = Inbox(ws)
            await ws.send(send("before"))
            await inbox.wait_messages(1)

            proxy.cut()
            assert await eventually(lambda: _is(health(srv), 503), 10)
            await ws.send(send("during, over the socket"))
            error = await inbox.wait_for('id="chat-error"', timeout=30)
            assert "database" in error and "try again" in error
            api = await alice.api(
                "POST", f"/api/rooms/{room}/messages", json={"text": "during, over the API"}
            )
            assert api.status_code == 503 and "database" in api.json()["detail"]
            assert int(api.headers["retry-after"]) > 0
            # A tab opening now is told to come back (1013), not failed with 1011.
            late = await alice.socket(room)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(late.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

            proxy.restore()
            assert await eventually(lambda: _is(health(srv), 200), 20)
            await ws.send(send("after"))  # the same socket, no restart
            await inbox.wait_messages(2, timeout=15)
            stored = [
                m["text"]
                for m in reversed((await alice.api("GET", f"/api/rooms/{room}/messages")).json())
            ]
            assert stored == ["before", "after"]  # nothing half-written
            assert texts(inbox) == ["before", "after"]
            assert [seq for _, seq in inbox.messages()] == [1, 2]
            await ws.close()
            await alice.close()
            assert "Traceback" not in srv.log.read_text()


async def _is(value, expected: int) -> bool:  # noqa: ANN001
    return await value == expected


async def read_until_closed(inbox: Inbox) -> None:
    """Keep every frame the socket got before its server went away."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await inbox.wait_for("", timeout=30)


@pytest.fixture
def kill_db() -> str:
    return postgres_url("talkroom_hardening_kill")


async def burst(sender: Browser, url: str, n: int, acked: list[int]) -> None:
    """Post until the server stops answering; the ids it confirmed go to ``acked``."""
    for i in range(200):
        body = {"text": f"{n}/{i}", "client_id": f"{n}-{i}"}
        try:
            response = await sender.api("POST", url, json=body)
        except httpx.HTTPError:
            return
        if response.status_code != 201:
            return
        acked.append(response.json()["id"])


async def test_a_worker_killed_mid_burst_loses_no_committed_message(
    tmp_path: Path, kill_db: str
) -> None:
    """Ten senders post through one server, which is SIGKILLed mid-burst: some messages
    are committed and never published (or never answered). A watcher on the other
    server gets each of them once, in order, as soon as the next event shows the gap;
    a client of the killed server resumes on the survivor with exactly the rest."""
    redis_server = RedisProcess(tmp_path / "redis.log")
    redis_server.start()
    try:
        with servers(tmp_path, 2, kill_db, redis_server.url, message_rate="0") as (
            victim,
            survivor,
        ):
            room = victim.create_room("killed")
            url = f"/api/rooms/{room}/messages"
            watcher, resumer = (
                await user_on(survivor, "kill_watcher"),
                await user_on(victim, "kill_resumer"),
            )
            watched = Inbox(await watcher.socket(room, after=0, max_queue=None))
            on_victim = Inbox(await resumer.socket(room, after=0, max_queue=None))
            for inbox in (watched, on_victim):
                await inbox.wait_for('id="members"')
            senders = [await user_on(victim, f"kill_sender{n}") for n in range(10)]
            acked: list[int] = []
            tasks = [asyncio.create_task(burst(s, url, n, acked)) for n, s in enumerate(senders)]
            assert await eventually(lambda: _true(len(acked) >= 150), 30, every=0.01)
            victim.stop(signal.SIGKILL)
            await asyncio.gather(*tasks)
            await read_until_closed(on_victim)

            # The next event, from the survivor, shows the watcher any gap to repair.
            await watcher.api("POST", url, json={"text": "after the kill"})
            expected = await history(watcher, room)
            await watched.wait_messages(len(expected), timeout=30)
            await watched.drain(0.5)
            assert watched.messages() == expected
            assert set(acked) <= {message_id for message_id, _ in expected}
            assert [seq for _, seq in expected] == list(range(1, len(expected) + 1))

            cursor = on_victim.messages()[-1][1] if on_victim.messages() else 0
            resumed = Inbox(await tab(resumer, survivor).socket(room, after=cursor))
            await resumed.wait_messages(len(expected) - cursor, timeout=30)
            await resumed.drain(0.3)
            assert on_victim.messages() + resumed.messages() == expected
            committed = len(expected) - 1
            repairs = await scrape(survivor)
            print(
                f"\nSIGKILL mid-burst: {committed} committed, {len(acked)} confirmed, "
                f"{committed - len(acked)} saved but never confirmed, 0 lost; watcher gap "
                f"repairs: {metric_labelled(repairs, 'talkroom_gap_repairs_total', 'gap')}"
            )
            await watched.ws.close()
            await resumed.ws.close()
    finally:
        redis_server.stop()


async def _true(value: bool) -> bool:
    return value


def metric_labelled(text: str, name: str, reason: str) -> float:
    found = re.search(rf'^{name}{{reason="{reason}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0
