"""Membership across workers: two servers on one PostgreSQL and one Redis.

A member removed through one server is closed (1008) on the other at once (the
close event every worker hears) and can no longer load the room there. A password
change (or "log out everywhere else") on one closes the other sessions' sockets on
the other just as fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scale_support import redis_db, servers, tab, user_on
from support import PASSWORD, Browser, Inbox, Server, postgres_url
from test_api import closed_code
from test_hardening_sessions import NEW_PASSWORD, change_password, me_status

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    root = tmp_path_factory.mktemp("private-pair")
    database, redis_url = postgres_url("talkroom_private_pair"), redis_db(9)
    # The periodic check is slow here, so only the close event can be in time.
    with servers(root, 2, database, redis_url, message_rate="0", socket_check_interval="60") as (
        a,
        b,
    ):
        yield [a, b]


async def test_a_member_removed_on_one_worker_is_closed_on_the_other_within_a_second(
    pair: list[Server],
) -> None:
    a, b = pair
    owner = await user_on(a, "pairowner")
    a.set_admin(owner.username)
    friend = await user_on(b, "pairfriend")
    made = await owner.api("POST", "/api/rooms", json={"name": "pair-secret", "kind": "private"})
    assert made.status_code == 201, made.text
    room = made.json()["id"]
    friend_id = (await friend.api("GET", "/api/me")).json()["id"]
    assert (await owner.api("PUT", f"/api/rooms/{room}/members/{friend_id}")).status_code == 204
    inside = Inbox(await friend.socket(room))
    await inside.wait_for('id="members"')
    assert (await owner.api("DELETE", f"/api/rooms/{room}/members/{friend_id}")).status_code == 204
    # Well inside the 60 s check interval: only the close event could do it. (The
    # bound is loose for a busy box; bench/ is where speeds are measured.)
    assert await closed_code(inside.ws, timeout=3) == 1008
    assert (await friend.client.get(f"/rooms/{room}")).status_code == 404
    assert (await friend.api("GET", f"/api/rooms/{room}/messages")).status_code == 404
    # Added again on one, let in again on the other.
    assert (await owner.api("PUT", f"/api/rooms/{room}/members/{friend_id}")).status_code == 204
    again = Inbox(await friend.socket(room))
    await again.wait_for('id="members"')
    await again.ws.close()
    for browser in (owner, friend):
        await browser.close()


async def test_a_password_change_on_one_worker_closes_the_other_sessions_sockets_on_the_other(
    pair: list[Server],
) -> None:
    """The account page's password change (and "log out everywhere else") end the
    other sessions' sockets on every worker at once, not at the next periodic check."""
    a, b = pair
    desk = await user_on(a, "pairpassword")
    laptop = Browser(b)  # the same person, logged in on the other worker
    assert (await laptop.login(desk.username)).status_code == 303
    room = a.create_room("pair-password")
    on_laptop = Inbox(await laptop.socket(room))
    await on_laptop.wait_for('id="members"')
    changed = await change_password(desk, PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 303, changed.text
    assert await closed_code(on_laptop.ws, timeout=3) == 1008
    assert await me_status(b, laptop.client.cookies) == 401
    # "Log out everywhere else", from worker b, closes a socket on worker a.
    again = Browser(a)
    assert (await again.login(desk.username, NEW_PASSWORD)).status_code == 303
    on_a = Inbox(await again.socket(room))
    await on_a.wait_for('id="members"')
    mover = tab(desk, b)
    await mover.fetch_csrf("/account")
    ended = await mover.client.post("/account/sessions/others/end", data={"csrf_token": mover.csrf})
    assert ended.status_code == 303
    assert await closed_code(on_a.ws, timeout=3) == 1008
    for browser in (desk, laptop, again):
        await browser.close()
