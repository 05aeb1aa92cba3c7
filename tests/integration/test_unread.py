"""Mentions, read positions with their unread counts, and typing, over a real server."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest
from support import Browser, Inbox, query

_rooms = itertools.count()


@pytest.fixture(scope="module")
async def admin(server) -> Browser:  # noqa: ANN001
    """One admin for the module: rooms made through the API take milliseconds, where
    the CLI (the shared ``room`` fixture) takes a process start each."""
    browser = Browser(server)
    assert (await browser.register(f"unread_admin{id(server) % 1000}")).status_code == 303
    server.set_admin(browser.username)
    yield browser
    await browser.close()


@pytest.fixture
async def room(admin: Browser) -> int:
    response = await admin.api("POST", "/api/rooms", json={"name": f"unread-{next(_rooms)}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


MENTION_RE = re.compile(r'<span class="mention" data-mention="([^"]+)">@([^<]*)</span>')


# JOINED: a socket opened without ?after= starts at the seq the server reads once it
# has subscribed (its member list comes then): a message posted before that is not
# this socket's to get, so a test that posts at once waits for the join first.


async def counts(browser, room: int) -> tuple[int, int]:  # noqa: ANN001
    rooms = (await browser.api("GET", "/api/rooms")).json()
    found = next(r for r in rooms if r["id"] == room)
    return found["unread"], found["mentions"]


async def post(browser, room: int, text: str) -> dict:  # noqa: ANN001
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def read(browser, room: int, seq: object) -> dict:  # noqa: ANN001
    response = await browser.api("POST", f"/api/rooms/{room}/read", json={"seq": seq})
    assert response.status_code == 200, response.text
    return response.json()


async def test_mentions_are_stored_rendered_once_and_counted(server, room, make_user) -> None:
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"', timeout=30)  # joined: see JOINED
        name = bob.username
        text = f"hi @{name.upper()}, @nobody_here and mail x@{name}.com @{name}"
        message = await post(alice, room, text)
        frame = await inbox.wait_for(f'id="message-{message["id"]}"')
    # Known names become mention elements (the username, as typed); the rest is text.
    assert MENTION_RE.findall(frame) == [
        (bob.username, bob.username.upper()),
        (bob.username, bob.username),
    ]
    assert "@nobody_here" in frame and f"x@{bob.username}.com" in frame
    assert message["mentions"] == [bob.username]
    # One mention row, however often the message names bob.
    rows = await query(
        server, "SELECT count(*) FROM message_mentions WHERE message_id = :m", m=message["id"]
    )
    assert rows == [(1,)]
    assert await counts(bob, room) == (1, 1)
    assert await counts(alice, room) == (0, 0)  # one's own messages are not unread
    # A page load renders the same element.
    page = (await bob.client.get(f"/rooms/{room}")).text
    assert f'data-mention="{bob.username}">@{bob.username.upper()}</span>' in page


async def test_five_hundred_names_are_capped(server, room, make_user) -> None:
    alice = await make_user()
    names = [(await make_user()).username for _ in range(3)]
    filler = [f"g{i:03d}" for i in range(497)]  # 500 names in all, in 4,000 characters
    text = " ".join(f"@{n}" for n in filler[:30] + names + filler[30:])
    message = await post(alice, room, text)
    # Only the first MAX_MENTIONS (20) distinct names are looked at: those users,
    # named after 30 unknown ones, are plain text and get nothing.
    assert message["mentions"] == []
    text = " ".join(f"@{n}" for n in names * 100 + filler[:200])
    message = await post(alice, room, text)
    assert message["mentions"] == names
    rows = await query(
        server, "SELECT count(*) FROM message_mentions WHERE message_id = :m", m=message["id"]
    )
    assert rows == [(3,)]


async def test_hostile_strings_after_an_at_are_inert(server, room, make_user) -> None:
    alice, bob = await make_user(), await make_user()
    hostile = [
        f'@{bob.username}"><script>alert(1)</script>',
        f"@{bob.username}<img src=x onerror=alert(1)>",
        '@"><b hx-get="/x">',
        "@\u202e" + bob.username,
        f"@{bob.username}\u200b",
    ]
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"', timeout=30)  # joined: see JOINED
        for text in hostile:
            message = await post(alice, room, text)
            frame = await inbox.wait_for(f'id="message-{message["id"]}"')
            assert "<script" not in frame and "<img" not in frame and "<b " not in frame
            # As text it may read hx-get="/x" (a text node needs only < > & escaped),
            # but no element carries it: every "<" of the text is "&lt;".
            assert not re.search(r"<[^<>]*\bhx-get=", frame)
            for username, _ in MENTION_RE.findall(frame):
                assert username == bob.username
    api = (await bob.api("GET", f"/api/rooms/{room}/messages")).json()
    assert [m["text"] for m in reversed(api[: len(hostile)])] == hostile


async def test_read_positions_clamp_and_never_go_back(server, room, make_user) -> None:
    alice, bob = await make_user(), await make_user()
    first = await post(alice, room, "one")
    await post(alice, room, f"two @{bob.username}")
    last = await post(alice, room, "three")
    assert await counts(bob, room) == (3, 1)
    assert (await read(bob, room, first["seq"]))["unread"] == 2
    moved = await read(bob, room, 10**30)  # beyond the last seq: the last seq
    assert moved == {"room_id": room, "seq": last["seq"], "unread": 0, "mentions": 0}
    assert (await read(bob, room, 1))["seq"] == last["seq"]  # backwards: nothing moves
    assert (await read(bob, room, -5))["seq"] == last["seq"]
    bad = await bob.api("POST", f"/api/rooms/{room}/read", json={"seq": "x"})
    assert bad.status_code == 422
    missing = await bob.api("POST", "/api/rooms/999999/read", json={"seq": 1})
    assert missing.status_code == 404


async def test_read_over_the_socket_is_clamped_and_updates_every_tab(
    server, room, make_user
) -> None:
    alice, bob = await make_user(), await make_user()
    message = await post(alice, room, f"ping @{bob.username}")
    async with await bob.socket(room) as ws, await bob.connect("/ws/lobby") as lobby:
        tab, other = Inbox(ws), Inbox(lobby)
        await tab.drain(0.2)
        for frame in ['{"read": "7"}', '{"read": 1.5}', '{"read": true}', '{"read": null}']:
            await ws.send(frame)
            assert "&#34;read&#34; must be a seq" in await tab.wait_for("chat-error")
        await ws.send('{"read": 1%s}' % ("0" * 40))  # past 64 bits
        # Both tabs hear the new counts on the user's channel.
        for inbox in (tab, other):
            frame = await inbox.wait_for(f'id="unread-{room}"')
            assert f'data-unread="0" data-mentions="0" data-read="{message["seq"]}"' in frame
        await ws.send('{"read": -3}')  # backwards: nothing changes, nothing is said
        await ws.send('{"message": "still open"}')
        await tab.wait_for("still open")
    assert await counts(bob, room) == (0, 0)


async def test_a_mention_reaches_the_mentioned_users_sockets(
    server, room, make_user, admin
) -> None:
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    made = await admin.api("POST", "/api/rooms", json={"name": f"other-{room}"})
    other = made.json()["id"]
    async with await bob.socket(other) as ws, await carol.connect("/ws/lobby") as lobby:
        bob_tab, carol_tab = Inbox(ws), Inbox(lobby)
        await bob_tab.wait_for('id="members"', timeout=30)
        message = await post(alice, room, f"@{bob.username} look")
        frame = await bob_tab.wait_for(f'id="unread-{room}"')
        assert 'data-unread="1" data-mentions="1"' in frame
        assert f'data-message="{message["id"]}"' in frame  # the note for a notification
        # Every page hears that the room moved (and fetches its own counts again).
        moved = f'id="activity-{room}" data-room="{room}" data-seq="{message["seq"]}"'
        await carol_tab.wait_for(moved)
        assert not any(f'id="unread-{room}"' in f for f in carol_tab.frames)


async def test_typing_is_throttled_and_never_saved(server, room, make_user) -> None:
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(room) as typist, await bob.socket(room) as watcher:
        seen = Inbox(watcher)
        await seen.drain(0.2)
        last_seq = await query(server, "SELECT last_seq FROM rooms WHERE id = :r", r=room)
        for _ in range(30):
            await typist.send('{"typing": true}')
        await typist.send('{"typing": false}')
        await typist.send('{"typing": "yes"}')
        got = await seen.drain(0.5)
        shown = [f for f in got if f'data-typing="{alice.username}"' in f]
        assert len(shown) == 1  # thirty notes, one broadcast (at most one per 2 s)
        mine = Inbox(typist)
        assert "&#34;typing&#34; must be true or false" in await mine.wait_for("chat-error")
    # Not saved, not sequenced.
    assert await query(server, "SELECT last_seq FROM rooms WHERE id = :r", r=room) == last_seq


async def test_mention_suggestions_are_scoped_and_escaped(server, room, make_user) -> None:
    me = await make_user()
    await make_user("zed_one")
    await make_user("zed.two")
    html = (await me.client.get(f"/rooms/{room}/mentionable", params={"q": "ZED"})).text
    assert re.findall(r'data-name="([^"]+)"', html) == ["zed.two", "zed_one"]
    # The underscore is no wildcard; nothing odd is an error.
    html = (await me.client.get(f"/rooms/{room}/mentionable", params={"q": "zed_"})).text
    assert re.findall(r'data-name="([^"]+)"', html) == ["zed_one"]
    for q in ['"><script>', "%", "x" * 32]:
        response = await me.client.get(f"/rooms/{room}/mentionable", params={"q": q})
        assert response.status_code == 200 and "<script" not in response.text
    assert (await me.client.get("/rooms/999999/mentionable")).status_code == 404
    await asyncio.sleep(0)
