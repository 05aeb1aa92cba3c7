"""Permalinks and the search page over a real server: a room opened around one
message, history both ways from it, and the same 404 as an unknown room for anyone
who cannot read it."""

from __future__ import annotations

import re

from support import MESSAGE_RE, Server
from test_private_rooms import private_world


def seqs(html: str) -> list[int]:
    return [int(s) for _, s in MESSAGE_RE.findall(html)]


async def test_a_permalink_opens_the_room_around_its_message(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    posted = []
    for i in range(1, 121):
        body = {"text": f"line {i}"}
        r = await alice.api("POST", f"/api/rooms/{room}/messages", json=body)
        posted.append(r.json())
    page = await alice.client.get(f"/rooms/{room}/messages/60")
    assert page.status_code == 200 and "<html" in page.text
    assert seqs(page.text) == list(range(10, 111))  # 50 either side of it
    assert 'data-highlight="60"' in page.text
    # Not live yet: the socket connects once the newest message is loaded.
    assert f'data-ws-later="/ws/rooms/{room}"' in page.text and "ws-connect=" not in page.text
    assert f'hx-get="/rooms/{room}/messages?before=10"' in page.text
    assert f'hx-get="/rooms/{room}/messages?after=110"' in page.text
    newer = await alice.client.get(f"/rooms/{room}/messages?after=110")
    assert seqs(newer.text) == list(range(111, 121)) and "hx-get" not in newer.text
    # A page of newer history that does not reach the end asks for the next one.
    middle = await alice.client.get(f"/rooms/{room}/messages?after=20")
    assert seqs(middle.text) == list(range(21, 71))
    assert f'hx-get="/rooms/{room}/messages?after=70"' in middle.text
    # The fragment (htmx opening it in place), and a message near the end: live at once.
    near_end = await alice.client.get(f"/rooms/{room}/messages/100", headers={"HX-Request": "true"})
    assert "<html" not in near_end.text and seqs(near_end.text) == list(range(50, 121))
    assert f'ws-connect="/ws/rooms/{room}"' in near_end.text and "?after=" not in near_end.text
    assert (await alice.client.get(f"/rooms/{room}/messages/1")).status_code == 200
    for missing in ("121", "0", str(2**63)):
        response = await alice.client.get(f"/rooms/{room}/messages/{missing}")
        assert response.status_code in (404, 422), (missing, response.status_code)
        assert response.status_code == 404 or missing != "121"
    assert (await alice.client.get(f"/rooms/{room}/messages")).status_code == 400


async def test_a_permalink_into_a_room_one_cannot_read_is_not_found(
    server: Server, make_user, unique: str
) -> None:
    owner, friend, outsider, private, dm = await private_world(server, make_user, unique)
    await owner.api("POST", f"/api/rooms/{private}/messages", json={"text": "secret"})
    await friend.api("POST", f"/api/rooms/{dm}/messages", json={"text": "whisper"})
    unknown = await outsider.client.get("/rooms/2000000000/messages/1")
    for room in (private, dm):
        got = await outsider.client.get(f"/rooms/{room}/messages/1")
        assert got.status_code == unknown.status_code == 404
        assert "secret" not in got.text and "whisper" not in got.text
        newer = await outsider.client.get(f"/rooms/{room}/messages?after=0")
        assert newer.status_code == 404
    assert (await friend.client.get(f"/rooms/{private}/messages/1")).status_code == 200


async def test_the_search_page_groups_hits_by_room_and_links_their_permalinks(
    server: Server, make_user, room: int, unique: str
) -> None:
    alice = await make_user()
    other = server.create_room(f"elsewhere-{unique}")
    key = f"zz{unique}word"
    sent = []
    for target in (room, other, room):
        r = await alice.api(
            "POST", f"/api/rooms/{target}/messages", json={"text": f"<i>{key}</i> here"}
        )
        sent.append(r.json())
    page = await alice.client.get("/search", params={"q": key})
    assert page.status_code == 200 and "<html" in page.text
    assert 'id="search-input"' in page.text
    groups = re.findall(r'class="search-group" data-room="(\d+)"', page.text)
    assert groups == [str(room), str(other)]  # rooms by their newest hit
    links = re.findall(r'href="(/rooms/\d+/messages/\d+)"', page.text)
    assert links == [
        f"/rooms/{m['room_id']}/messages/{m['seq']}" for m in (sent[2], sent[0], sent[1])
    ]
    assert f"&lt;i&gt;<mark>{key}</mark>&lt;/i&gt;" in page.text and "<i>" not in page.text
    # Paging: older results come as a fragment for htmx, or as the whole page.
    for _ in range(20):
        await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"{key} again"})
    first = await alice.client.get("/search", params={"q": key})
    older = re.search(r'hx-get="/search\?q=[^&]+&amp;before=(\d+)"', first.text)
    assert older, first.text[-2000:]
    rest = await alice.client.get(
        "/search", params={"q": key, "before": older.group(1)}, headers={"HX-Request": "true"}
    )
    assert "<html" not in rest.text and len(re.findall(r'class="hit"', rest.text)) == 3
    empty = await alice.client.get("/search", params={"q": "nothingmatchesthis"})
    assert "No messages match" in empty.text
    long = await alice.client.get("/search", params={"q": "a" * 1001})
    assert long.status_code == 422 and "at most 1,000 characters" in long.text
