"""An admin removes a user: their messages become tombstones and their reactions go,
each a change with its room's next seq, seen live and on resume by real sockets, in
history and in search, on SQLite and PostgreSQL (see ON_BOTH)."""

from __future__ import annotations

import re
from urllib.parse import quote

from support import Browser, Inbox, Server, database_url, query

# Every message element a socket received: (id, rev, deleted).
ELEMENT_RE = re.compile(r'<article class="msg" id="message-(\d+)" data-seq="\d+" data-rev="(\d+)"')
THUMBS = "👍"


async def post(browser: Browser, room: int, text: str) -> dict:
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def react(browser: Browser, room: int, message_id: int) -> None:
    path = f"/api/rooms/{room}/messages/{message_id}/reactions/{quote(THUMBS)}"
    assert (await browser.api("PUT", path)).status_code in (200, 201, 204)


async def history(browser: Browser, room: int) -> dict[int, dict]:
    response = await browser.client.get(f"/api/rooms/{room}/messages", params={"limit": 100})
    assert response.status_code == 200, response.text
    return {m["id"]: m for m in response.json()}


async def last_seq(browser: Browser, room: int) -> int:
    return max(m["rev"] for m in (await history(browser, room)).values())


def changes(frames: list[str]) -> list[tuple[int, int]]:
    """(message id, rev) of every message element received, in arrival order."""
    return [(int(i), int(r)) for f in frames for i, r in ELEMENT_RE.findall(f)]


def tombstones(frames: list[str]) -> set[int]:
    tag = re.compile(r'<article class="msg" id="message-(\d+)"[^>]* data-deleted[ >]')
    return {int(i) for f in frames for i in tag.findall(f)}


async def remove(admin: Browser, user: Browser) -> None:
    user_id = (await user.api("GET", "/api/me")).json()["id"]
    response = await admin.api("DELETE", f"/api/users/{user_id}")
    assert response.status_code == 204, response.text


async def search(browser: Browser, word: str) -> list[int]:
    response = await browser.api("GET", "/api/search", params={"q": word})
    assert response.status_code == 200, response.text
    return [hit["message_id"] for hit in response.json()]


async def indexed(server: Server, word: str) -> list[int]:
    """The messages the search index itself holds the word for (search hides deleted
    messages anyway: this is what it keeps)."""
    if database_url(server).startswith("sqlite"):
        sql = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH :word"
    else:
        sql = "SELECT id FROM messages WHERE search_document @@ to_tsquery('simple', :word)"
    return sorted(row[0] for row in await query(server, sql, word=word))


async def test_a_removed_users_messages_and_reactions_change_live_on_resume_and_in_history(
    server: Server, make_user, room: int, unique: str
) -> None:
    admin, carol, bob = await make_user(), await make_user(), await make_user()
    server.set_admin(admin.username)
    other = server.create_room(f"other-{unique}")
    word = f"carolword{unique}"
    first = await post(carol, room, f"{word} one")
    bobs = await post(bob, room, "bob's words")
    second = await post(carol, room, f"{word} two")
    elsewhere = await post(carol, other, f"{word} elsewhere")
    await react(carol, room, bobs["id"])
    await react(bob, room, bobs["id"])
    assert await search(admin, word) == [elsewhere["id"], second["id"], first["id"]]
    assert await indexed(server, word) == sorted([first["id"], second["id"], elsewhere["id"]])
    held = {r: await last_seq(bob, r) for r in (room, other)}

    async with await bob.socket(room) as ws_room, await bob.socket(other) as ws_other:
        inboxes = {room: Inbox(ws_room), other: Inbox(ws_other)}
        for inbox in inboxes.values():
            await inbox.wait_for('id="members"', timeout=30)
            await inbox.drain(0.3)
            inbox.frames.clear()
        await remove(admin, carol)
        live = {}
        for r, inbox in inboxes.items():
            want = 3 if r == room else 1
            while len(changes(inbox.frames)) < want:
                await inbox.wait_for("message-", timeout=10)
            await inbox.drain(0.5)
            live[r] = inbox.frames
    # Each change once, in seq order with no gap: the room's next seqs.
    assert changes(live[room]) == [
        (first["id"], held[room] + 1),
        (bobs["id"], held[room] + 2),
        (second["id"], held[room] + 3),
    ]
    assert changes(live[other]) == [(elsewhere["id"], held[other] + 1)]
    assert tombstones(live[room]) == {first["id"], second["id"]}
    assert tombstones(live[other]) == {elsewhere["id"]}
    seen = "".join(live[room] + live[other])
    assert word not in seen and carol.username not in seen
    assert f'data-reactors=" {bob.username} "' in seen

    # A page that was away: the same state from the seq it held.
    async with await bob.socket(room, after=held[room]) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="room-seq"')
        await inbox.drain(0.3)
        assert sorted(changes(inbox.frames)) == sorted(changes(live[room]))
        assert tombstones(inbox.frames) == {first["id"], second["id"]}
        caught_up = "".join(inbox.frames)
        assert f'data-seq="{held[room] + 3}" hidden' in caught_up
        assert word not in caught_up and f'data-reactors=" {bob.username} "' in caught_up

    # History and search agree.
    rows = await history(bob, room) | await history(bob, other)
    for gone in (first, second, elsewhere):
        row = rows[gone["id"]]
        assert (row["deleted"], row["text"], row["author"], row["html"]) == (True, None, None, None)
    assert rows[bobs["id"]]["reactions"] == [
        {"emoji": THUMBS, "count": 1, "usernames": [bob.username]}
    ]
    assert await search(admin, word) == []
    assert await indexed(server, word) == []
    page = (await bob.client.get(f"/rooms/{room}")).text
    assert word not in page and len(re.findall(r"data-deleted", page)) >= 2
    # The room goes on: the next message comes live after the changes.
    async with await bob.socket(room, after=held[room] + 3) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"', timeout=30)
        after = await post(bob, room, "still here")
        await inbox.wait_for(f'id="message-{after["id"]}"')
        assert after["seq"] == held[room] + 4


async def test_a_prolific_users_removal_reaches_sockets_by_repair_exactly_once(
    server: Server, make_user, room: int
) -> None:
    admin, carol, bob = await make_user(), await make_user(), await make_user()
    server.set_admin(admin.username)
    sent = [await post(carol, room, f"carol's {n}") for n in range(25)]  # > PER_MESSAGE
    held = await last_seq(bob, room)
    async with await bob.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"', timeout=30)
        await inbox.drain(0.3)
        inbox.frames.clear()
        await remove(admin, carol)
        await inbox.wait_for(f'data-seq="{held + 25}" hidden', timeout=10)
        # Live from there, in order: the next message follows the repair.
        after = await post(bob, room, "after the removal")
        await inbox.wait_for(f'id="message-{after["id"]}"')
        await inbox.drain(0.3)
    got = changes(inbox.frames)
    assert sorted(got[:-1]) == [(m["id"], held + 1 + n) for n, m in enumerate(sent)]
    assert got[-1] == (after["id"], held + 26)
    assert tombstones(inbox.frames) == {m["id"] for m in sent}


async def test_a_removed_users_messages_are_not_unread_nor_mentions(
    server: Server, make_user, room: int
) -> None:
    admin, carol, bob = await make_user(), await make_user(), await make_user()
    server.set_admin(admin.username)

    async def counts() -> tuple[int, int]:
        rooms = (await bob.api("GET", "/api/rooms")).json()
        [mine] = [r for r in rooms if r["id"] == room]
        return mine["unread"], mine["mentions"]

    await post(carol, room, "hello")
    await post(carol, room, f"hi @{bob.username}")
    assert await counts() == (2, 1)
    await remove(admin, carol)
    assert await counts() == (0, 0)
