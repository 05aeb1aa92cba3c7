"""Reactions over the API, seen live by real sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

from support import Browser, Inbox, Server, running_server

FAMILY = "👨\u200d👩\u200d👧"


def reaction_url(room: int, message_id: int, emoji: str) -> str:
    return f"/api/rooms/{room}/messages/{message_id}/reactions/{quote(emoji)}"


async def post(browser: Browser, room: int, text: str) -> dict:
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def test_reactions_toggle_idempotently_and_reach_every_socket(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    message = await post(alice, room, "lunch?")
    async with await alice.socket(room) as ws_a, await bob.socket(room) as ws_b:
        a, b = Inbox(ws_a), Inbox(ws_b)
        await a.drain(0.3)
        await b.drain(0.3)
        first = await bob.api("PUT", reaction_url(room, message["id"], "👍"))
        assert first.status_code == 200, first.text
        assert first.json()["reactions"] == [
            {"emoji": "👍", "count": 1, "usernames": [bob.username]}
        ]
        rev = first.json()["rev"]
        assert rev == message["seq"] + 1
        for inbox in (a, b):
            frame = await inbox.wait_for('data-emoji="👍"')
            assert frame.startswith(f'<article class="msg" id="message-{message["id"]}"')
            assert f'data-reactors=" {bob.username} "' in frame

        # Again: nothing changes, no seq is taken, nothing is sent.
        again = await bob.api("PUT", reaction_url(room, message["id"], "👍"))
        assert again.status_code == 200 and again.json()["rev"] == rev
        both = await alice.api("PUT", reaction_url(room, message["id"], "👍"))
        family = await alice.api("PUT", reaction_url(room, message["id"], FAMILY))
        assert family.status_code == 200
        assert family.json()["reactions"] == [
            {"emoji": "👍", "count": 2, "usernames": [bob.username, alice.username]},
            {"emoji": FAMILY, "count": 1, "usernames": [alice.username]},
        ]
        assert both.json()["rev"] == rev + 1 and family.json()["rev"] == rev + 2
        await b.wait_for(f'data-emoji="{FAMILY}"')

        taken = await bob.api("DELETE", reaction_url(room, message["id"], "👍"))
        assert taken.json()["reactions"][0] == {
            "emoji": "👍",
            "count": 1,
            "usernames": [alice.username],
        }
        await a.wait_for(f'data-emoji="👍" data-reactors=" {alice.username} "')
        gone = await bob.api("DELETE", reaction_url(room, message["id"], "👍"))
        assert gone.status_code == 200 and gone.json()["rev"] == rev + 3
        await a.drain(0.3)
        # One frame per change (bob, alice, the family, bob's taken back): not one more.
        assert len([f for f in a.frames if 'data-emoji="👍"' in f]) == 4

    listed = (await bob.client.get(f"/api/rooms/{room}/messages")).json()
    [row] = [m for m in listed if m["id"] == message["id"]]
    assert [r["emoji"] for r in row["reactions"]] == ["👍", FAMILY]
    page = (await bob.client.get(f"/rooms/{room}")).text
    assert f'data-emoji="{FAMILY}" data-reactors=" {alice.username} "' in page


async def test_a_reaction_that_is_not_one_emoji_is_refused(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    other_room = server.create_room(f"react-other-{room}")
    message = await post(alice, room, "react to me")
    for bad in ("ok", "👍👍", "a👍", "%00", "%07", "👍%0A", "%E2%80%8D"):
        path = f"/api/rooms/{room}/messages/{message['id']}/reactions/{bad}"
        response = await alice.api("PUT", path)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"]
    missing = await alice.api("PUT", reaction_url(other_room, message["id"], "👍"))
    assert missing.status_code == 404
    assert (await alice.api("DELETE", f"/api/rooms/{room}/messages/{message['id']}")).status_code
    late = await alice.api("PUT", reaction_url(room, message["id"], "👍"))
    assert late.status_code == 409 and "deleted" in late.json()["detail"]
    [row] = [
        m
        for m in (await alice.client.get(f"/api/rooms/{room}/messages")).json()
        if m["id"] == message["id"]
    ]
    assert row["reactions"] == []


async def test_reaction_floods_are_rate_limited(tmp_path, make_user) -> None:
    with running_server(tmp_path, message_rate="0.2", message_burst="3") as srv:
        room = srv.create_room("react-limited")
        alice = await make_user(target=srv)
        message = await post(alice, room, "one")
        answers = []
        for emoji in ("👍", "🎉", "👀", "😂"):
            answers.append(await alice.api("PUT", reaction_url(room, message["id"], emoji)))
        assert [r.status_code for r in answers] == [200, 200, 429, 429]
        assert int(answers[2].headers["retry-after"]) >= 1
