"""The message path over real sockets: ws -> chat -> broker -> hub -> socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

import httpx
import pytest
import websockets
from support import MESSAGE_RE, Browser, Inbox, Server, running_server
from websockets.exceptions import ConnectionClosed, InvalidStatus


def send(text: str, client_id: str | None = None) -> str:
    frame: dict[str, object] = {"message": text}
    if client_id:
        frame["client_id"] = client_id
    return json.dumps(frame)


async def online(browser: Browser, room: int) -> int:
    rooms = (await browser.client.get("/api/rooms")).json()
    return next(r["online"] for r in rooms if r["id"] == room)


async def history(browser: Browser, room: int) -> list[dict]:
    response = await browser.client.get(f"/api/rooms/{room}/messages", params={"limit": 100})
    return response.json()


async def test_message_reaches_both_escaped_saved_and_rendered_on_reload(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(room) as wa, await bob.socket(room) as wb:
        a, b = Inbox(wa), Inbox(wb)
        for inbox in (a, b):
            await inbox.wait_for('id="members"')  # both are in
        await wa.send(send("<script>alert(1)</script> & hi"))
        frame_a = await a.wait_for(MESSAGE_RE)
        frame_b = await b.wait_for(MESSAGE_RE)
    assert frame_a == frame_b  # rendered once, the same bytes for everyone
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; hi" in frame_b
    assert "<script>" not in frame_b
    assert alice.username in frame_b
    assert 'hx-swap-oob="beforeend"' in frame_b
    ((message_id, seq),) = [(int(i), int(s)) for i, s in MESSAGE_RE.findall(frame_b)]
    assert seq == 1
    saved = await history(bob, room)
    assert [(m["id"], m["seq"], m["text"], m["author"]) for m in saved] == [
        (message_id, 1, "<script>alert(1)</script> & hi", alice.username)
    ]
    fragment = await bob.client.get(f"/rooms/{room}", headers={"HX-Request": "true"})
    assert f'id="message-{message_id}" data-seq="1"' in fragment.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment.text
    assert "<html" not in fragment.text
    page = await bob.client.get(f"/rooms/{room}")
    assert "<html" in page.text and f'id="message-{message_id}"' in page.text


async def test_room_fragment_holds_the_socket_form_and_latest_messages(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    for i in range(55):
        r = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"m{i}"})
        assert r.status_code == 201
    fragment = (await alice.client.get(f"/rooms/{room}", headers={"HX-Request": "true"})).text
    assert f'hx-ext="ws" ws-connect="/ws/rooms/{room}"' in fragment
    assert "<form ws-send" in fragment and 'name="message"' in fragment
    seqs = [int(s) for _, s in MESSAGE_RE.findall(fragment)]
    assert seqs == list(range(6, 56))  # the latest 50, oldest first
    assert f'hx-get="/rooms/{room}/messages?before=6"' in fragment  # older ones on scroll-up
    older = (await alice.client.get(f"/rooms/{room}/messages?before=6")).text
    assert [int(s) for _, s in MESSAGE_RE.findall(older)] == [1, 2, 3, 4, 5]
    assert "hx-trigger" not in older  # nothing older than seq 1


async def test_second_tab_joins_silently_and_leave_comes_with_the_last(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    watcher = Inbox(await alice.socket(room))
    await watcher.wait_for(f'data-notice="join" data-user="{alice.username}"')
    tab1 = await bob.socket(room)
    await watcher.wait_for(f'data-notice="join" data-user="{bob.username}"')
    assert await online(alice, room) == 2
    tab2 = await bob.socket(room)
    await Inbox(tab2).wait_for('id="members"')  # counted in: it was told who is here
    await tab1.close()
    quiet = await watcher.drain(0.5)
    assert not any("data-notice" in f for f in quiet), quiet  # no join, no leave
    assert await online(alice, room) == 2
    await tab2.close()
    await watcher.wait_for(f'data-notice="leave" data-user="{bob.username}"')
    assert await online(alice, room) == 1
    await watcher.ws.close()
    for _ in range(50):
        if await online(bob, room) == 0:
            break
        await asyncio.sleep(0.05)
    assert await online(bob, room) == 0


async def test_online_counts_reach_other_rooms_pages(
    server: Server, make_user, unique: str
) -> None:
    lobby_room = server.create_room(f"lobby-{unique}")
    busy_room = server.create_room(f"busy-{unique}")
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(lobby_room) as wa:
        a = Inbox(wa)
        async with await bob.socket(busy_room):
            frame = await a.wait_for(f'id="online-{busy_room}"')
            assert ">1</span>" in frame
        frame = await a.wait_for(f'id="online-{busy_room}"')
        assert ">0</span>" in frame


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ('{"message": 5}', "needs a &#34;message&#34;"),
        ('{"text": "hi"}', "needs a &#34;message&#34;"),
        ('{"message": "hi", "client_id": 7}', "client_id"),
        ('{"message": "   "}', "empty"),
        (json.dumps({"message": "x" * 4001}), "at most 4000"),
        ("[" * 5000 + "]" * 5000, "not JSON"),
    ],
)
async def test_bad_frames_answer_the_sender_alone(
    server: Server, make_user, room: int, frame: str, error: str
) -> None:
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(room) as wa:
        a = Inbox(wa)
        # The server registers a socket just after its handshake: wait until alice
        # is in the room, so that she hears bob come in.
        await a.wait_for('id="members"')
        async with await bob.socket(room) as wb:
            b = Inbox(wb)
            await a.wait_for(f'data-user="{bob.username}"')
            await b.drain(0.2)
            await wa.send(frame)
            reply = await a.wait_for('id="chat-error"')
            assert error in reply
            assert not [f for f in await b.drain(0.3) if "chat-error" in f or MESSAGE_RE.search(f)]
            # The socket stays open and usable.
            await wa.send(send("still here"))
            await b.wait_for("still here")
    assert [m["text"] for m in await history(alice, room)] == ["still here"]


async def test_binary_frames_are_answered_not_saved(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    async with await alice.socket(room) as wa:
        a = Inbox(wa)
        await wa.send(b'{"message": "binary"}')
        assert "text frames" in await a.wait_for('id="chat-error"')
    assert await history(alice, room) == []


async def test_exactly_4000_characters_is_accepted(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    async with await alice.socket(room) as wa:
        await wa.send(send("y" * 4000))
        await Inbox(wa).wait_for(MESSAGE_RE)
    assert len((await history(alice, room))[0]["text"]) == 4000


async def test_oversized_frame_closes_with_1009(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    async with await alice.socket(room) as wa:
        await wa.send(send("z" * 70_000))
        with pytest.raises(ConnectionClosed) as closed:
            await Inbox(wa).drain(2)
            await wa.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert await history(alice, room) == []


async def test_socket_without_session_is_closed_with_1008(server: Server, room: int) -> None:
    async with websockets.connect(server.ws_url(f"/ws/rooms/{room}")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_socket_for_unknown_room_is_closed_with_1008(server: Server, make_user) -> None:
    alice = await make_user()
    async with await alice.socket(999_999) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:{other}",
        "http://127.0.0.1.evil.example:{port}",
    ],
)
async def test_foreign_origin_is_refused_at_the_handshake(
    server: Server, make_user, room: int, origin: str
) -> None:
    alice = await make_user()
    with pytest.raises(InvalidStatus) as refused:
        await alice.socket(room, origin=origin.format(port=server.port, other=server.port + 1))
    assert refused.value.response.status_code == 403


async def test_socket_without_origin_is_let_in_on_its_credentials(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    async with await alice.socket(room, origin=None) as ws:
        await Inbox(ws).wait_for(f'data-user="{alice.username}"')


async def test_allowed_origins_setting_lets_a_listed_origin_in(tmp_path, make_user) -> None:
    with running_server(
        tmp_path, allowed_origins="https://chat.example, http://other.example:8080"
    ) as srv:
        room = srv.create_room("origins")
        alice = await make_user(target=srv)
        async with await alice.socket(room, origin="https://chat.example") as ws:
            await Inbox(ws).wait_for("data-notice")
        with pytest.raises(InvalidStatus):
            await alice.socket(room, origin="https://chat.example.evil")


async def test_resume_after_k_gets_exactly_the_rest_then_live(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    for i in range(1, 11):
        await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"before {i}"})

    async def post_more() -> None:
        for i in range(11, 31):
            await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"during {i}"})

    poster = asyncio.create_task(post_more())
    await asyncio.sleep(0.02)
    async with await bob.socket(room, after=4) as ws:
        inbox = Inbox(ws)
        await poster
        got = await inbox.wait_messages(26)
        await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "live"})
        got = await inbox.wait_messages(27)
        await inbox.drain(0.3)
    assert [seq for _, seq in inbox.messages()] == list(range(5, 32))
    assert len(got) == len(set(got))


async def test_socket_without_after_gets_only_live_messages(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "old"})
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for("data-notice")
        await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "new"})
        await inbox.wait_messages(1)
        await inbox.drain(0.3)
    assert [seq for _, seq in inbox.messages()] == [2]


async def test_retried_frame_with_the_same_client_id_saves_one_message(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        for _ in range(3):
            await ws.send(send("once", client_id="c-123"))
        await ws.send(send("twice", client_id="c-124"))
        await inbox.wait_messages(2)
        await inbox.drain(0.3)
    assert [seq for _, seq in inbox.messages()] == [1, 2]
    assert [m["text"] for m in await history(alice, room)] == ["twice", "once"]
    # The same id over the API is the same message too.
    again = await alice.api(
        "POST", f"/api/rooms/{room}/messages", json={"text": "once", "client_id": "c-123"}
    )
    assert again.json()["seq"] == 1


async def test_rate_limit_answers_the_sender_and_saves_nothing_over_it(tmp_path, make_user) -> None:
    # One token per 10 s: at one a second, a loaded machine took longer than that over
    # the burst and the drain, and the API post found a token again (201).
    with running_server(tmp_path, message_rate="0.1", message_burst="3") as srv:
        room = srv.create_room("limited")
        alice = await make_user(target=srv)
        async with await alice.socket(room) as ws:
            inbox = Inbox(ws)
            for i in range(6):
                await ws.send(send(f"burst {i}"))
            await inbox.wait_for("too fast")
            await inbox.drain(0.3)
            over = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "api"})
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1
        saved = [m["text"] for m in await history(alice, room)]
        assert sorted(saved) == ["burst 0", "burst 1", "burst 2"]
        assert len(inbox.messages()) == 3


async def test_messages_from_many_senders_arrive_in_seq_order_once(
    server: Server, make_user, room: int
) -> None:
    users = [await make_user() for _ in range(4)]
    sockets = [await u.socket(room) for u in users]
    inboxes = [Inbox(s) for s in sockets]
    for inbox in inboxes:
        await inbox.wait_for('id="members"')  # joined: live messages from here on

    async def burst(ws: websockets.ClientConnection, n: int) -> None:
        for i in range(25):
            await ws.send(send(f"{n}-{i}"))

    await asyncio.gather(*(burst(s, n) for n, s in enumerate(sockets)))
    for inbox in inboxes:
        got = await inbox.wait_messages(100, timeout=20)
        assert [seq for _, seq in got] == list(range(1, 101))
    for s in sockets:
        await s.close()


async def counter(browser: Browser, name: str) -> float:
    text = (await browser.client.get("/metrics")).text
    match = re.search(rf"^{name}_total (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def test_one_fast_senders_frames_share_transactions_in_the_order_sent(
    server: Server, make_user, room: int
) -> None:
    """A socket reads its next frame while the last post is saved, so one sender
    going fast has its messages batched like many senders', never reordered."""
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(room) as sender, await bob.socket(room) as listener:
        inbox = Inbox(listener)
        await inbox.wait_for('id="members"')
        saved = await counter(alice, "talkroom_messages_saved")
        transactions = await counter(alice, "talkroom_message_transactions")
        for i in range(100):
            await sender.send(send(f"fast {i}", client_id=f"fast-{i}"))
        got = await inbox.wait_messages(100, timeout=20)
        saved = await counter(alice, "talkroom_messages_saved") - saved
        transactions = await counter(alice, "talkroom_message_transactions") - transactions
    seqs = [seq for _, seq in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 100
    texts = [m["text"] for m in reversed(await history(alice, room))][-100:]
    assert texts == [f"fast {i}" for i in range(100)]
    assert saved == 100
    # One transaction a message is what a sender that waits for each save gets.
    assert transactions <= 50, f"{transactions} transactions for 100 messages"


async def test_unknown_room_page_is_404(server: Server, make_user) -> None:
    alice = await make_user()
    assert (await alice.client.get("/rooms/424242")).status_code == 404
    assert (
        await alice.client.get("/rooms/424242", headers={"HX-Request": "true"})
    ).status_code == 404


async def test_api_needs_a_login(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base) as client:
        assert (await client.get("/api/rooms")).status_code == 401


async def tasks_alive(browser: Browser) -> int:
    text = (await browser.client.get("/metrics")).text
    match = re.search(r"^talkroom_asyncio_tasks (\S+)$", text, re.M)
    assert match, "talkroom_asyncio_tasks not in /metrics"
    return int(float(match.group(1)))


async def test_idle_sockets_keep_no_task_and_still_chat(
    server: Server, make_user, room: int
) -> None:
    """Room sockets are detached once in (app.fastws): an idle one keeps no
    coroutine, task or ASGI queue, which is most of what it used to cost."""
    alice, bob = await make_user(), await make_user()
    before = await tasks_alive(alice)
    async with contextlib.AsyncExitStack() as stack:
        inboxes = []
        for browser in (alice, bob) * 10:
            inbox = Inbox(await stack.enter_async_context(await browser.socket(room)))
            await inbox.wait_for('id="members"')
            inboxes.append(inbox)
        await asyncio.sleep(0.5)  # presence and catch-up done: all 20 are idle
        during = await tasks_alive(alice)
        # Through plain ASGI each socket held two tasks (its coroutine and its sender).
        assert during - before < 5, (before, during)
        await inboxes[0].ws.send(send("still here"))
        for inbox in inboxes:
            assert "still here" in await inbox.wait_for(MESSAGE_RE)


async def test_the_lobby_socket_brings_every_count_then_follows_them(
    server: Server, make_user, unique: str
) -> None:
    """The home page (no room open) keeps its counts live over /ws/lobby."""
    quiet, busy = server.create_room(f"quiet-{unique}"), server.create_room(f"busy-{unique}")
    alice, bob = await make_user(), await make_user()
    async with await bob.socket(busy) as wb:
        await Inbox(wb).wait_for('id="members"')
        async with await alice.connect("/ws/lobby") as lobby:
            home = Inbox(lobby)
            first = await home.wait_for(f'id="online-{busy}"')
            assert f'id="online-{quiet}"' in first  # every room, brought up to date
            assert re.search(rf'id="online-{busy}"[^>]*>1</span>', first)
            await lobby.send(send("nobody reads this"))  # ignored, not an error
            async with await bob.socket(quiet):
                frame = await home.wait_for(f'id="online-{quiet}"')
                assert ">1</span>" in frame
            frame = await home.wait_for(f'id="online-{quiet}"')
            assert ">0</span>" in frame
            assert not [f for f in home.frames if "chat-error" in f or "message-" in f]
    assert await online(alice, quiet) == 0


async def test_the_lobby_socket_needs_a_session(server: Server) -> None:
    async with websockets.connect(server.ws_url("/ws/lobby")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_socket_too_far_behind_gets_the_latest_page_instead(tmp_path, make_user) -> None:
    """Up to resync_limit missed messages are appended; more replace the list with
    the latest page (the rest loads on scroll-up), and live ones follow it."""

    def seqs(frame: str) -> list[int]:
        return [int(seq) for _, seq in MESSAGE_RE.findall(frame)]

    with running_server(tmp_path, resync_limit="5", message_rate="0") as srv:
        room = srv.create_room("behind")
        alice = await make_user(target=srv)
        for i in range(1, 9):
            r = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"m{i}"})
            assert r.status_code == 201, r.text
        async with await alice.socket(room, after=5) as ws:
            frame = await Inbox(ws).wait_for(MESSAGE_RE)
            assert 'id="messages" hx-swap-oob="beforeend"' in frame
            assert seqs(frame) == [6, 7, 8]
        async with await alice.socket(room, after=1) as ws:
            inbox = Inbox(ws)
            frame = await inbox.wait_for(MESSAGE_RE)
            assert 'id="messages" hx-swap-oob="innerHTML"' in frame
            assert seqs(frame) == list(range(1, 9))
            await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "live"})
            assert seqs(await inbox.wait_for("live")) == [9]


async def test_sockets_that_join_while_a_message_commits_all_get_it(
    server: Server, make_user, room: int
) -> None:
    """Sockets resuming from the same seq share one catch-up query. One that joins
    while such a query runs, as a message commits, must still get that message: it
    was published before the socket subscribed, the shared query may have read the
    room before it committed, and no later message comes to reveal the gap."""
    poster = await make_user()
    readers = [await make_user() for _ in range(4)]
    path = f"/api/rooms/{room}/messages"
    latest = (await poster.client.get(path, params={"limit": 1})).json()
    seq, missed = (latest[0]["seq"] if latest else 0), []
    for n in range(20):
        post = asyncio.create_task(poster.api("POST", path, json={"text": f"round {n}"}))
        sockets = await asyncio.gather(*(r.socket(room, after=seq) for r in readers * 2))
        assert (await post).status_code == 201
        seq += 1
        for ws in sockets:
            inbox = Inbox(ws)
            try:
                await inbox.wait_for(f'data-seq="{seq}"', timeout=5)
            except TimeoutError:
                missed.append(n)
            await ws.close()
    assert missed == []
