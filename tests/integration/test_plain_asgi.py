"""The app under stock uvicorn, without app.fastws: room sockets through plain ASGI.

`talkroom serve` always uses app.fastws; any other ASGI server gets the
fallback (app.web.asgi_socket.AsgiSocket, and the receive loop in app.web.ws).
It must chat the same.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import MESSAGE_RE, Browser, Inbox, Server, free_port, server_env
from test_websocket import send, tasks_alive


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("plain-asgi")
    server = Server(free_port(), server_env(data, message_rate="0"), data / "server.log")
    server.cli("migrate")
    with server.log.open("ab") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
            + ["--port", str(server.port), "--ws", "websockets-sansio"],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


async def test_plain_asgi_sockets_chat_join_and_close(plain: Server) -> None:
    room = plain.create_room("plain")
    alice, bob = Browser(plain), Browser(plain)
    for browser, name in ((alice, "plainalice"), (bob, "plainbob")):
        assert (await browser.register(name)).status_code == 303
    before = await tasks_alive(alice)
    async with await alice.socket(room) as wa:
        a = Inbox(wa)
        # Alice in first: a join announced before her socket subscribed is not hers.
        await a.wait_for('id="members"')
        wb = await bob.socket(room)
        b = Inbox(wb)
        await b.wait_for('id="members"')
        await a.wait_for('data-notice="join" data-user="plainbob"')
        # Each socket keeps its coroutine here: the measure in the detached test is real.
        assert await tasks_alive(alice) - before >= 2
        await wb.send(send("over plain ASGI"))
        assert "over plain ASGI" in await a.wait_for(MESSAGE_RE)
        assert "over plain ASGI" in await b.wait_for(MESSAGE_RE)
        await wb.send("not json")
        assert "not JSON" in await b.wait_for("chat-error")
        await wb.close()
    for browser in (alice, bob):
        await browser.close()
