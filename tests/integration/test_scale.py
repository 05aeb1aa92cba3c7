"""Scale out: several servers (one of them with two uvicorn workers) sharing PostgreSQL
and Redis, with real clients on each.

Every test here uses its own PostgreSQL database and Redis database (or its own
redis-server), so presence from one never leaks into another.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from scale_support import (
    RedisProcess,
    eventually,
    health,
    history,
    members,
    metric,
    notices,
    online,
    redis_db,
    scrape,
    servers,
    tab,
    user_on,
)
from support import Inbox, Server, postgres_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def send(text: str) -> str:
    return json.dumps({"message": text})


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Three servers on three ports; the third runs two uvicorn workers."""
    root = tmp_path_factory.mktemp("trio")
    database, redis_url = postgres_url("talkroom_scale_trio"), redis_db(11)
    # One test client reads 30 sockets from one event loop while 30 senders, unlimited,
    # post as fast as the servers save: it falls behind, which the default outbox
    # (256) would answer with 1013, as it should a browser that stops reading.
    fast = {"message_rate": "0", "outbox_size": "4096"}
    with servers(root, 2, database, redis_url, **fast) as (a, b):  # noqa: SIM117
        with servers(root / "c", 1, database, redis_url, "--workers", "2", **fast) as (c,):
            yield [a, b, c]


async def test_a_message_on_any_server_reaches_every_client_once_in_order(
    trio: list[Server],
) -> None:
    room = trio[0].create_room("fan-out")
    people = [await user_on(srv, f"fan{n}{i}") for n, srv in enumerate(trio) for i in range(2)]
    sockets = [await p.socket(room, after=0) for p in people]
    inboxes = [Inbox(ws) for ws in sockets]
    for inbox in inboxes:
        await inbox.wait_for('id="members"')
    # Everyone is counted in, on every server; the who-is-here list agrees too.
    names = sorted(p.username for p in people)
    for srv, person in zip(trio, people[::2], strict=True):
        assert await eventually(lambda p=person: _is(online(p, room), 6), 5)
        page = (await person.client.get(f"/rooms/{room}", headers={"HX-Request": "true"})).text
        assert sorted(members(page)) == names, srv.port

    # Each server's first client sends five messages, all at once.
    async def burst(ws, n: int) -> None:  # noqa: ANN001
        for i in range(5):
            await ws.send(send(f"from {n}: {i}"))

    await asyncio.gather(*(burst(sockets[2 * n], n) for n in range(3)))
    got = [await inbox.wait_messages(15) for inbox in inboxes]
    await asyncio.gather(*(inbox.drain(0.5) for inbox in inboxes))  # doubles would arrive now
    expected = await history(people[0], room)
    assert [seq for _, seq in expected] == list(range(1, 16))
    for inbox in inboxes:
        assert inbox.messages() == expected  # each once, in seq order
    assert all(g[:15] == expected for g in got)
    for ws in sockets:
        await ws.close()
    for p in people:
        await p.close()


async def _is(value, expected: int) -> bool:  # noqa: ANN001
    return await value == expected


async def test_concurrent_senders_on_every_server_leave_every_client_with_the_history(
    trio: list[Server],
) -> None:
    room = trio[0].create_room("busy")
    # 30 senders at once are the point; 20 messages each (18,000 deliveries) show an
    # ordering or loss bug as well as 50 did, in under half the time.
    per_server, each = 10, 20
    people = [
        await user_on(srv, f"busy{n}x{i}") for n, srv in enumerate(trio) for i in range(per_server)
    ]
    # No client-side queue limit: this test reads 30 sockets from one event loop.
    sockets = [await p.socket(room, after=0, max_queue=None) for p in people]
    inboxes = [Inbox(ws) for ws in sockets]
    for inbox in inboxes:
        await inbox.wait_for('id="members"')

    async def talk(ws, n: int) -> None:  # noqa: ANN001
        for i in range(each):
            await ws.send(send(f"{n}/{i}"))

    total = len(people) * each
    await asyncio.gather(*(talk(ws, n) for n, ws in enumerate(sockets)))
    # 18,000 deliveries over four processes: slow on a busy machine, so the wait
    # only ends when messages stop coming (a lost one never does).
    await asyncio.gather(*(inbox.wait_messages(total, stall=30) for inbox in inboxes))
    expected = await history(people[0], room)
    assert [seq for _, seq in expected] == list(range(1, total + 1))
    await asyncio.gather(*(inbox.drain(0.3) for inbox in inboxes))
    for inbox in inboxes:
        assert inbox.messages() == expected
    for ws in sockets:
        await ws.close()
    for p in people:
        await p.close()


async def test_one_users_tabs_on_two_servers_join_once_and_leave_once(
    trio: list[Server],
) -> None:
    a, b, c = trio
    room = a.create_room("tabs")
    alice = await user_on(c, "tabs-alice")
    bob = await user_on(a, "tabs-bob")
    watcher = Inbox(await alice.socket(room))
    await watcher.wait_for('id="members"')
    tab1 = await bob.socket(room)
    await watcher.wait_for(f'data-notice="join" data-user="{bob.username}"')
    bob_on_b = tab(bob, b)
    tab2 = await bob_on_b.socket(room)
    await Inbox(tab2).wait_for('id="members"')
    for person in (alice, bob, bob_on_b):
        assert await online(person, room) == 2
    await tab1.close()
    await watcher.drain(0.7)
    assert await online(alice, room) == 2
    await tab2.close()
    await watcher.wait_for(f'data-notice="leave" data-user="{bob.username}"')
    await watcher.drain(0.3)
    assert notices(watcher, "join", bob.username) == 1
    assert notices(watcher, "leave", bob.username) == 1
    for person in (alice, bob, bob_on_b):
        assert await online(person, room) == 1
    await watcher.ws.close()
    for person in (alice, bob, bob_on_b):
        await person.close()


async def test_metrics_add_up_the_workers_of_a_server(trio: list[Server]) -> None:
    c = trio[2]  # two uvicorn workers behind one port
    room = trio[0].create_room("metrics")
    people = [await user_on(c, f"metrics{i}") for i in range(6)]
    sockets = [await p.socket(room) for p in people]
    for ws in sockets:
        await Inbox(ws).wait_for('id="members"')
    async with httpx.AsyncClient(base_url=c.base) as client:

        async def scrapes() -> list[str]:
            # A scrape lands on either worker; each must tell the same sum.
            got = [await client.get("/metrics") for _ in range(8)]
            assert all(r.headers["content-type"].startswith("text/plain") for r in got)
            return [r.text for r in got]

        async def six_everywhere() -> bool:
            return {metric(text, "talkroom_connections") for text in await scrapes()} == {6.0}

        # The earlier tests' sockets on this server close in their own time.
        assert await eventually(six_everywhere, 30), [
            metric(text, "talkroom_connections") for text in await scrapes()
        ]
        text = (await scrapes())[-1]
        for name in (
            "talkroom_rooms_subscribed",
            "talkroom_messages_saved_total",
            "talkroom_deliveries_total",
            "talkroom_slow_clients_closed_total",
            "talkroom_redis_reconnects_total",
            "talkroom_save_to_send_seconds_count",
        ):
            metric(text, name)
        assert 'talkroom_gap_repairs_total{reason="gap"}' in text
        assert 'talkroom_gap_repairs_total{reason="resync"}' in text
    for ws in sockets:
        await ws.close()
    for p in people:
        await p.close()


async def test_chat_through_nginx_in_front_of_two_servers(
    trio: list[Server], tmp_path: Path
) -> None:
    from nginx_support import running_nginx

    a, b, _ = trio
    room = a.create_room("proxied")
    with running_nginx(tmp_path, [a.port, b.port]) as proxy:
        alice, bob = await user_on(proxy, "nginx-alice"), await user_on(proxy, "nginx-bob")
        # Four sockets through one address: round robin spreads them over both servers.
        wa, wb = await alice.socket(room, after=0), await bob.socket(room, after=0)
        extra = [await alice.socket(room), await bob.socket(room)]
        a_in, b_in = Inbox(wa), Inbox(wb)
        for inbox in (a_in, b_in, *(Inbox(ws) for ws in extra)):
            await inbox.wait_for('id="members"')
        spread = [metric(await scrape(s), "talkroom_connections") for s in (a, b)]
        assert all(n >= 1 for n in spread), spread
        await wa.send(send("hello through nginx"))
        await b_in.wait_for("hello through nginx")
        await wb.send(send("and back"))
        await a_in.wait_for("and back")
        for inbox in (a_in, b_in):
            await inbox.drain(0.3)
            assert [seq for _, seq in inbox.messages()] == [1, 2]
        page = await alice.client.get(f"/rooms/{room}")
        assert "hello through nginx" in page.text
        assert (await alice.client.get("/healthz")).json() == {"status": "ok"}
        for ws in (wa, wb, *extra):
            await ws.close()
        await alice.close()
        await bob.close()


@pytest.fixture
def kill_db() -> tuple[str, str]:
    return postgres_url("talkroom_scale_kill"), redis_db(12)


@pytest.fixture
def restart_db() -> str:
    return postgres_url("talkroom_scale_redis_restart")


async def test_a_killed_server_drops_out_of_the_counts_by_itself(
    tmp_path: Path, kill_db: tuple[str, str]
) -> None:
    database, redis_url = kill_db
    with servers(tmp_path, 2, database, redis_url) as (x, y):
        room = x.create_room("crash")
        alice, carol = await user_on(x, "kill-alice"), await user_on(x, "kill-carol")
        bob = await user_on(y, "kill-bob")
        watcher = Inbox(await alice.socket(room, after=0))
        other = Inbox(await carol.socket(room, after=0))
        await watcher.wait_for('id="members"')
        bob_ws = await bob.socket(room)
        await watcher.wait_for(f'data-notice="join" data-user="{bob.username}"')
        assert await online(alice, room) == 3
        y.stop(signal.SIGKILL)
        # Gone by itself within 30 s: a leave notice, and the count follows.
        await watcher.wait_for(f'data-notice="leave" data-user="{bob.username}"', timeout=30)
        assert await online(alice, room) == 2
        page = (await alice.client.get(f"/rooms/{room}", headers={"HX-Request": "true"})).text
        assert sorted(members(page)) == sorted([alice.username, carol.username])
        # The others keep chatting.
        await watcher.ws.send(send("still here"))
        await other.wait_for("still here")
        await watcher.wait_for("still here")
        await bob_ws.close()
        for person in (alice, bob, carol):
            await person.close()


RESYNC_REPAIRS = 'talkroom_gap_repairs_total{reason="resync"}'


async def test_a_redis_restart_loses_no_message(tmp_path: Path, restart_db: str) -> None:
    """Our own redis-server (never the shared one): killed and started again while
    clients are connected. Messages saved meanwhile arrive afterwards, once each."""
    redis_server = RedisProcess(tmp_path / "redis.log")
    redis_server.start()
    try:
        with servers(tmp_path, 2, restart_db, redis_server.url) as (x, y):
            room = x.create_room("outage")
            alice, bob = await user_on(x, "outage-alice"), await user_on(y, "outage-bob")
            wa = await alice.socket(room, after=0)
            a_in = Inbox(wa)
            # Alice is in before bob comes (her server subscribes the room first),
            # so bob's arrival reaches her as a join line, not in her member list.
            await a_in.wait_for('id="members"')
            wb = await bob.socket(room, after=0)
            b_in = Inbox(wb)
            await a_in.wait_for(f'data-notice="join" data-user="{bob.username}"')
            # Two more tabs of alice's: three sockets on x that fall behind together.
            tabs = [Inbox(await alice.socket(room, after=0)) for _ in range(2)]
            await wa.send(send("before"))
            for inbox in (a_in, b_in, *tabs):
                await inbox.wait_messages(1)
            before = await scrape(x)

            redis_server.stop()
            assert await eventually(lambda: _is(health(x), 503), 10)
            # Sent during the outage, on both servers: saved, not relayed yet.
            await wa.send(send("during 1"))
            await wa.send(send("during 2"))
            r = await bob.api("POST", f"/api/rooms/{room}/messages", json={"text": "during 3"})
            assert r.status_code == 201, r.text
            await asyncio.sleep(0.5)
            r = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "during 4"})
            assert r.status_code == 201, r.text

            redis_server.start()
            for srv in (x, y):
                assert await eventually(lambda s=srv: _is(health(s), 200), 10)
            for inbox in (a_in, b_in):
                await inbox.wait_messages(5, timeout=15)
            await wb.send(send("after"))
            for inbox in (a_in, b_in):
                await inbox.wait_messages(6, timeout=10)
                await inbox.drain(0.5)
            expected = await history(alice, room)
            assert [seq for _, seq in expected] == [1, 2, 3, 4, 5, 6]
            assert a_in.messages() == expected and b_in.messages() == expected
            # Presence written back after Redis lost it: both still counted.
            assert await eventually(lambda: _is(online(bob, room), 2), 10)
            scraped = await scrape(x)
            assert metric(scraped, "talkroom_redis_reconnects_total") >= 1
            # Each socket resynced, and the three on x shared their catch-up query.
            for tab in tabs:
                await tab.wait_messages(6)
            resyncs, queries = (
                metric(scraped, name) - metric(before, name)
                for name in (RESYNC_REPAIRS, "talkroom_catch_up_queries_total")
            )
            assert resyncs >= 3 and queries < resyncs, (resyncs, queries)
            for ws in (wa, wb, *(tab.ws for tab in tabs)):
                await ws.close()
            await alice.close()
            await bob.close()
    finally:
        redis_server.stop()


async def test_two_deployments_on_one_redis_never_hear_each_other(tmp_path: Path) -> None:
    """Pub/sub channels ignore Redis database numbers; ours carry them, so two sites
    on one Redis (``/13`` and ``/14``), each with its own room 1, stay apart."""
    from support import running_server

    first, second = redis_db(13), redis_db(14)
    with (
        running_server(tmp_path / "one", redis_url=first) as one,
        running_server(tmp_path / "two", redis_url=second) as two,
    ):
        rooms = [one.create_room("lobby"), two.create_room("lobby")]
        assert rooms == [1, 1]
        alice, bob = await user_on(one, "site-one"), await user_on(two, "site-two")
        wa, wb = await alice.socket(1, after=0), await bob.socket(1, after=0)
        a_in, b_in = Inbox(wa), Inbox(wb)
        await wa.send(send("only for site one"))
        await a_in.wait_messages(1)
        await wb.send(send("only for site two"))
        await b_in.wait_messages(1)
        await a_in.drain(0.5)
        await b_in.drain(0.5)
        assert "only for site two" not in "".join(a_in.frames) and "site-two" not in "".join(
            a_in.frames
        )
        assert "only for site one" not in "".join(b_in.frames) and "site-one" not in "".join(
            b_in.frames
        )
        assert len(a_in.messages()) == len(b_in.messages()) == 1
        for ws in (wa, wb):
            await ws.close()
        await alice.close()
        await bob.close()


async def test_unread_mentions_and_typing_cross_servers(trio: list[Server]) -> None:
    """A mention sent on server A updates the badge of the user's sockets on server B
    (their user channel); a read on B clears it on A; typing on A reaches B."""
    a, b = trio[0], trio[1]
    room = a.create_room("mentions-across")
    quiet = a.create_room("mentions-elsewhere")
    sender = await user_on(a, "ment_sender")
    reader = await user_on(b, "ment_reader")
    reader_on_a = tab(reader, a)
    async with (
        await reader.connect("/ws/lobby") as lobby_b,
        await reader.socket(quiet) as room_b,
        await reader_on_a.connect("/ws/lobby") as lobby_a,
        await sender.socket(room) as typist,
        await reader.socket(room) as watcher,
    ):
        lobby, in_room, other_tab = Inbox(lobby_b), Inbox(room_b), Inbox(lobby_a)
        watching = Inbox(watcher)
        await Inbox(typist).wait_for('id="members"')
        await watching.wait_for('id="members"')
        response = await sender.api(
            "POST", f"/api/rooms/{room}/messages", json={"text": f"@{reader.username} hi"}
        )
        message = response.json()
        badge = f'id="unread-{room}" data-unread="1" data-mentions="1"'
        for inbox in (lobby, in_room, other_tab):
            assert badge in await inbox.wait_for(f'id="unread-{room}"')
        rooms = (await reader.client.get("/api/rooms")).json()
        assert next(r for r in rooms if r["id"] == room)["mentions"] == 1
        # Read on B: every tab, the one on A too, hears the badge clear.
        await watcher.send(json.dumps({"read": message["seq"]}))
        cleared = f'id="unread-{room}" data-unread="0" data-mentions="0"'
        for inbox in (lobby, other_tab):
            assert cleared in await inbox.wait_for(cleared)
        # Typing on A reaches the reader's socket on B, once however often it is sent.
        for _ in range(10):
            await typist.send('{"typing": true}')
        await watching.wait_for(f'data-typing="{sender.username}"')
        got = await watching.drain(0.5)
        assert not any(f'data-typing="{sender.username}"' in f for f in got)
