"""Editing and deleting messages over the API, seen live and on resume by real sockets,
on SQLite and PostgreSQL (see ON_BOTH)."""

from __future__ import annotations

import json
import re

from support import MESSAGE_RE, Browser, Inbox, Server

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> hx-get="/admin" {{7*7}}'


def edit_url(room: int, message_id: int) -> str:
    return f"/api/rooms/{room}/messages/{message_id}"


async def post(browser: Browser, room: int, text: str) -> dict:
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def history(browser: Browser, room: int) -> list[dict]:
    response = await browser.client.get(f"/api/rooms/{room}/messages", params={"limit": 100})
    return response.json()


def element(frames: list[str], message_id: int) -> list[str]:
    """Every element for this message the socket received (its article tags)."""
    tag = re.compile(rf'<article class="msg" id="message-{message_id}"[^>]*>')
    return [m for frame in frames for m in tag.findall(frame)]


async def test_an_edit_and_a_delete_reach_every_socket_in_place(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    async with await alice.socket(room) as ws_a, await bob.socket(room) as ws_b:
        a, b = Inbox(ws_a), Inbox(ws_b)
        # Joined first: a socket's start is the seq read once it has subscribed.
        for inbox in (a, b):
            await inbox.wait_for('id="members"', timeout=30)
        message = await post(alice, room, "teh typo")
        await a.wait_for(f'id="message-{message["id"]}"')
        await b.wait_for(f'id="message-{message["id"]}"')

        edited = await alice.api("PATCH", edit_url(room, message["id"]), json={"text": "the fix"})
        assert edited.status_code == 200, edited.text
        body = edited.json()
        assert (body["text"], body["seq"]) == ("the fix", message["seq"])
        assert body["rev"] == message["seq"] + 1 and body["edited_at"] and not body["deleted"]
        for inbox in (a, b):
            frame = await inbox.wait_for("the fix")
            # The element alone (swapped in place by id), not appended to #messages.
            assert frame.startswith(f'<article class="msg" id="message-{message["id"]}"')
            assert "data-edited=" in frame and f'data-rev="{body["rev"]}"' in frame

        gone = await alice.api("DELETE", edit_url(room, message["id"]))
        assert gone.status_code == 204
        for inbox in (a, b):
            frame = await inbox.wait_for("data-deleted")
            assert "the fix" not in frame and alice.username not in frame
    [row] = [m for m in await history(bob, room) if m["id"] == message["id"]]
    assert (row["deleted"], row["text"], row["author"]) == (True, None, None)
    assert row["rev"] == body["rev"] + 1
    page = (await bob.client.get(f"/rooms/{room}")).text
    [tag] = re.findall(rf'<article class="msg" id="message-{message["id"]}"[^>]*>', page)
    assert "data-deleted" in tag
    assert "the fix" not in page and "teh typo" not in page


async def test_a_socket_offline_during_edits_catches_each_up_once_on_resume(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    async with await bob.socket(room) as ws:
        inbox = Inbox(ws)
        # Joined (a socket without ?after= starts at the seq the server reads once it
        # has subscribed): a post before that is not this socket's to get.
        await inbox.wait_for('id="members"', timeout=30)
        first = await post(alice, room, "first")
        second = await post(alice, room, "second")
        await inbox.wait_messages(2)
    held = max(seq for _, seq in inbox.messages())
    # Bob is offline: the first message is edited twice, the second deleted, a third posted.
    for text in ("first, edited", "first, edited again"):
        response = await alice.api("PATCH", edit_url(room, first["id"]), json={"text": text})
        assert response.status_code == 200
    assert (await alice.api("DELETE", edit_url(room, second["id"]))).status_code == 204
    third = await post(alice, room, "third")
    async with await bob.socket(room, after=held) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for(f'id="message-{third["id"]}"')
        await inbox.drain(0.5)
        # Each changed message once, in its latest state; the new one appended once.
        assert len(element(inbox.frames, first["id"])) == 1
        assert len(element(inbox.frames, second["id"])) == 1
        assert len(element(inbox.frames, third["id"])) == 1
        caught_up = "".join(inbox.frames)
        assert "first, edited again" in caught_up and "first, edited</p>" not in caught_up
        assert f'<span id="room-seq" data-seq="{third["seq"]}" hidden></span>' in caught_up
        # Live from there: the next edit comes once, nothing before it again.
        inbox.frames.clear()
        await alice.api("PATCH", edit_url(room, third["id"]), json={"text": "third, edited"})
        await inbox.wait_for("third, edited")
        await inbox.drain(0.3)
        assert [int(i) for f in inbox.frames for i, _ in MESSAGE_RE.findall(f)] == [third["id"]]


async def test_changes_refused_change_nothing(server: Server, make_user, room: int) -> None:
    alice, bob = await make_user(), await make_user()
    other_room = server.create_room(f"other-{room}")
    message = await post(alice, room, "alice's words")
    seq_before = (await history(alice, room))[0]["rev"]

    # Someone else's message, as a non-admin: 403 for both, nothing changed.
    theirs = await bob.api("PATCH", edit_url(room, message["id"]), json={"text": "bob's now"})
    assert theirs.status_code == 403 and theirs.json()["detail"]
    assert (await bob.api("DELETE", edit_url(room, message["id"]))).status_code == 403
    # A message of another room through this room's URL: not found.
    elsewhere = await alice.api("PATCH", edit_url(other_room, message["id"]), json={"text": "x"})
    assert elsewhere.status_code == 404
    assert (await alice.api("DELETE", edit_url(other_room, message["id"]))).status_code == 404
    assert (await alice.api("PATCH", edit_url(room, 2**40), json={"text": "x"})).status_code == 404
    # Empty, blank or too long: 422 with a reason.
    for text in ("", "   ", "x" * 5000):
        bad = await alice.api("PATCH", edit_url(room, message["id"]), json={"text": text})
        assert bad.status_code == 422 and bad.json()["detail"]
    [row] = [m for m in await history(alice, room) if m["id"] == message["id"]]
    assert (row["text"], row["rev"], row["edited_at"]) == ("alice's words", seq_before, None)

    # Deleted, it cannot be edited (409); deleting it again changes nothing.
    assert (await alice.api("DELETE", edit_url(room, message["id"]))).status_code == 204
    late = await alice.api("PATCH", edit_url(room, message["id"]), json={"text": "back"})
    assert late.status_code == 409 and "deleted" in late.json()["detail"]
    assert (await alice.api("DELETE", edit_url(room, message["id"]))).status_code == 204
    [row] = [m for m in await history(alice, room) if m["id"] == message["id"]]
    assert (row["deleted"], row["rev"]) == (True, seq_before + 1)


async def test_an_admin_deletes_anyones_message(server: Server, make_user, room: int) -> None:
    alice, admin = await make_user(), await make_user()
    server.set_admin(admin.username)
    message = await post(alice, room, "to be moderated")
    assert (await admin.api("DELETE", edit_url(room, message["id"]))).status_code == 204
    [row] = [m for m in await history(alice, room) if m["id"] == message["id"]]
    assert row["deleted"] is True


async def test_a_hostile_edit_stays_inert_and_mentions_are_found_again(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    message = await post(alice, room, "hello")
    async with await bob.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.drain(0.3)
        text = f"{HOSTILE} @{bob.username}"
        edited = await alice.api("PATCH", edit_url(room, message["id"]), json={"text": text})
        assert edited.status_code == 200 and edited.json()["mentions"] == [bob.username]
        frame = await inbox.wait_for(f'id="message-{message["id"]}"')
    # Text, never markup: no element, and no attribute of one, came from the edit
    # (its quotes may stay as typed in a text node, where they are inert).
    assert "<script>" not in frame and "<img" not in frame
    assert not re.search(r"<[^>]*hx-get", frame)
    assert "&lt;script&gt;" in frame and f'data-mention="{bob.username}"' in frame
    # Edited again without the mention: the mention is gone from the message.
    again = await alice.api("PATCH", edit_url(room, message["id"]), json={"text": "no one"})
    assert again.json()["mentions"] == []


async def test_edits_share_the_senders_rate_limit(tmp_path, make_user) -> None:
    from support import running_server

    with running_server(tmp_path, message_rate="0.2", message_burst="2") as srv:
        room = srv.create_room("limited-edits")
        alice = await make_user(target=srv)
        message = await post(alice, room, "one")  # takes one of the two
        statuses = [
            (await alice.api("PATCH", edit_url(room, message["id"]), json={"text": f"v{i}"}))
            for i in range(3)
        ]
        assert [s.status_code for s in statuses] == [200, 429, 429]
        assert int(statuses[1].headers["retry-after"]) >= 1
        assert json.loads(statuses[1].text)["detail"]


async def test_an_edit_is_formatted_again_and_search_follows_edits_and_deletes(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    message = await post(alice, room, "plain zanzibarword here")

    async def hits(word: str) -> list[int]:
        response = await alice.api("GET", "/api/search", params={"q": word})
        assert response.status_code == 200, response.text
        return [hit["message_id"] for hit in response.json()]

    assert await hits("zanzibarword") == [message["id"]]
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        edited = await alice.api(
            "PATCH", edit_url(room, message["id"]), json={"text": "**quokkaword** now"}
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["html"] == "<p><strong>quokkaword</strong> now</p>"
        frame = await inbox.wait_for("quokkaword")
        assert "<strong>quokkaword</strong>" in frame and "**" not in frame
    assert await hits("zanzibarword") == []
    assert await hits("quokka") == [message["id"]]
    page = (await alice.client.get(f"/rooms/{room}")).text
    assert "<strong>quokkaword</strong>" in page

    assert (await alice.api("DELETE", edit_url(room, message["id"]))).status_code == 204
    assert await hits("quokka") == []
    (gone,) = [m for m in await history(alice, room) if m["id"] == message["id"]]
    assert (gone["deleted"], gone["text"], gone["html"]) == (True, None, None)
