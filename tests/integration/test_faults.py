"""Faults the embedded default must survive."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from support import Inbox, running_server
from websockets.exceptions import ConnectionClosed


async def test_twenty_concurrent_sqlite_writers_never_see_database_locked(
    tmp_path, make_user
) -> None:
    with running_server(tmp_path, message_rate="0") as srv:
        room = srv.create_room("writers")
        writers = [await make_user(target=srv) for _ in range(20)]

        async def write(n: int) -> list[int]:
            codes = []
            for i in range(10):
                r = await writers[n].api(
                    "POST", f"/api/rooms/{room}/messages", json={"text": f"{n}:{i}"}
                )
                codes.append(r.status_code)
            return codes

        results = await asyncio.gather(*(write(n) for n in range(20)))
        assert all(code == 201 for codes in results for code in codes)
        log = srv.log.read_text()
        assert "database is locked" not in log
        assert "Traceback" not in log
        page = await writers[0].client.get(f"/api/rooms/{room}/messages?limit=100")
        seqs = [m["seq"] for m in page.json()]
        page2 = await writers[0].client.get(f"/api/rooms/{room}/messages?limit=100&before=101")
        seqs += [m["seq"] for m in page2.json()]
        assert sorted(seqs) == list(range(1, 201))


async def test_sigterm_closes_sockets_with_1012_and_clients_resume(tmp_path, make_user) -> None:
    with running_server(tmp_path, message_rate="0") as srv:
        room = srv.create_room("restart")
        alice = await make_user(target=srv)
        ws = await alice.socket(room, after=0)
        inbox = Inbox(ws)
        await ws.send(json.dumps({"message": "before"}))
        await inbox.wait_messages(1)
        srv.stop(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            await inbox.drain(5)
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        srv.start()
        await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "while away"})
        async with await alice.socket(room, after=1) as again:
            got = await Inbox(again).wait_messages(1)
        assert [seq for _, seq in got] == [2]


async def test_sockets_per_user_are_capped(tmp_path, make_user) -> None:
    with running_server(tmp_path, sockets_per_user="3") as srv:
        room = srv.create_room("capped")
        alice = await make_user(target=srv)
        sockets = [await alice.socket(room) for _ in range(3)]
        for ws in sockets:
            await Inbox(ws).wait_for('id="members"')
        extra = await alice.socket(room)
        with pytest.raises(ConnectionClosed) as closed:
            await extra.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "too many" in closed.value.rcvd.reason.lower()
        await sockets[0].close()
        await asyncio.sleep(0.2)
        async with await alice.socket(room) as fourth:
            await Inbox(fourth).wait_for('id="members"')
