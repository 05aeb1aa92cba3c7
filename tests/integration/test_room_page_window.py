"""The room page's message window is what the database holds now, whichever process
wrote or deleted it, even where SQLite hands a deleted row's id to a new one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support import MESSAGE_RE, Browser, Server, free_port, running_server

ARTICLE_RE = re.compile(r'<article class="msg" id="message-(\d+)".*?</article>', re.S)


@pytest.fixture
def two_servers(data_dir: Path) -> Iterator[tuple[Server, Server]]:
    """Two processes on one SQLite file: what one saves, the other must show."""
    with (
        running_server(data_dir, message_rate="0") as a,
        running_server(data_dir, port=free_port(), message_rate="0") as b,
    ):
        yield a, b


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    made: list[Browser] = []
    yield made
    for browser in made:
        await browser.close()


async def user(browsers: list[Browser], server: Server, name: str, *, new: bool = True) -> Browser:
    browser = Browser(server)
    browsers.append(browser)
    response = await (browser.register(name) if new else browser.login(name))
    assert response.status_code == 303, response.text
    return browser


async def post(browser: Browser, room: int, text: str) -> dict:
    response = await browser.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


async def window(browser: Browser, room: int) -> dict[int, str]:
    """Message id -> its element, as the room fragment shows them, in order."""
    response = await browser.client.get(f"/rooms/{room}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    return {int(m.group(1)): m.group(0) for m in ARTICLE_RE.finditer(response.text)}


async def test_a_page_shows_messages_saved_through_another_process(
    two_servers: tuple[Server, Server], browsers: list[Browser]
) -> None:
    a, b = two_servers
    room = a.create_room("window")
    alice_a = await user(browsers, a, "alice")
    alice_b = await user(browsers, b, "alice", new=False)
    first = [await post(alice_a, room, f"on a {i}") for i in range(3)]
    assert list(await window(alice_a, room)) == [m["id"] for m in first]
    assert list(await window(alice_a, room)) == [m["id"] for m in first]  # again, warm

    later = await post(alice_b, room, "saved <by> b")
    shown = await window(alice_a, room)
    assert list(shown) == [m["id"] for m in [*first, later]]
    assert "saved &lt;by&gt; b" in shown[later["id"]]
    assert shown == await window(alice_b, room)  # the same elements from either process


async def test_a_removed_users_messages_stay_in_every_window_as_tombstones(
    two_servers: tuple[Server, Server], browsers: list[Browser]
) -> None:
    a, b = two_servers
    room = a.create_room("deletions")
    alice = await user(browsers, a, "alice")
    spam = await user(browsers, b, "spammer")
    admin = await user(browsers, b, "admin")
    b.set_admin("admin")
    kept = await post(alice, room, "hello")
    spammed = [await post(spam, room, f"buy now {i}") for i in range(2)]
    ids = [kept["id"], *(m["id"] for m in spammed)]
    assert list(await window(alice, room)) == ids  # a's window, cached

    spammer_id = (await spam.api("GET", "/api/me")).json()["id"]
    assert (await admin.api("DELETE", f"/api/users/{spammer_id}")).status_code == 204
    shown = await window(alice, room)
    assert list(shown) == ids
    for m in spammed:
        assert "data-deleted" in shown[m["id"]] and "buy now" not in shown[m["id"]]
    assert "hello" in shown[kept["id"]]

    after = await post(alice, room, "back to normal")
    assert after["id"] not in ids  # the tombstones keep their ids
    shown = await window(alice, room)
    assert list(shown) == [*ids, after["id"]]
    assert "back to normal" in shown[after["id"]]
    assert 'data-author="alice"' in shown[after["id"]]
    assert f'data-seq="{after["seq"]}"' in shown[after["id"]]


async def test_a_room_made_again_under_the_same_id_shows_only_its_own_messages(
    two_servers: tuple[Server, Server], browsers: list[Browser]
) -> None:
    a, b = two_servers
    admin = await user(browsers, a, "admin")
    a.set_admin("admin")
    old_room = a.create_room("old")
    old = await post(admin, old_room, "in the old room")
    assert list(await window(admin, old_room)) == [old["id"]]
    assert (await admin.api("DELETE", f"/api/rooms/{old_room}")).status_code == 204

    # Same room id, message id, seq and room last_seq: only the room's creation differs.
    new_room = b.create_room("new")
    assert new_room == old_room  # SQLite reuses the highest id once it is gone
    new = await post(admin, new_room, "in the new room")
    assert (new["id"], new["seq"]) == (old["id"], old["seq"])
    shown = await window(admin, new_room)
    assert list(shown) == [new["id"]] and "in the new room" in shown[new["id"]]
    page = await admin.client.get(f"/rooms/{new_room}", headers={"HX-Request": "true"})
    assert "This is the start of <strong hx-disable>new</strong>" in page.text


async def test_an_empty_room_says_so_and_a_huge_before_is_refused(
    two_servers: tuple[Server, Server], browsers: list[Browser]
) -> None:
    a, _ = two_servers
    alice = await user(browsers, a, "alice")
    room = a.create_room("quiet")
    for _ in range(2):  # cold, then warm
        page = await alice.client.get(f"/rooms/{room}", headers={"HX-Request": "true"})
        assert MESSAGE_RE.findall(page.text) == [] and "No messages in" in page.text
        assert 'class="older"' not in page.text
    for before in (2**63, -(2**63) - 1, 0):
        response = await alice.client.get(f"/rooms/{room}/messages", params={"before": before})
        assert response.status_code == 422, before
