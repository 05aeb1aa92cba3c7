"""Private rooms and direct messages: to a non-member they do not exist.

The route walk reads the app's own router (as the CSRF test does), so a route
added later that takes a room id is checked too.
"""

from __future__ import annotations

import re
import statistics
import time

import pytest
from support import Browser, Inbox, Server
from test_api import closed_code, make_admin, user_id
from test_hardening_csrf import app_routes

UNKNOWN = 2_000_000_000
CSRF_VALUE = re.compile(r'(name="csrf_token" value=|content=|data-csrf=)"[^"]*"')
BODIES = {"text": "hi", "seq": 1, "name": "x", "description": "d", "usernames": ["x"]}


def room_routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    routes = app_routes(tmp_path_factory.mktemp("routes"))
    return [(m, p) for m, p in routes if "{room_id" in p]


def fill(path: str, room: int, user: int) -> str:
    path = re.sub(r"\{room_id[^}]*\}", str(room), path)
    return re.sub(r"\{user_id[^}]*\}", str(user), path)


async def answer(browser: Browser, method: str, path: str) -> tuple[int, str]:
    query = {"before": "2", "q": "a"}
    response = await browser.api(method, path, json=BODIES, params=query)
    return response.status_code, CSRF_VALUE.sub("", response.text)


async def private_world(server: Server, make_user, unique: str):
    owner = await make_admin(make_user, server)
    friend, outsider = await make_user(), await make_user()
    made = await owner.api(
        "POST", "/api/rooms", json={"name": f"secret-{unique}", "kind": "private"}
    )
    assert made.status_code == 201, made.text
    private = made.json()["id"]
    assert made.json()["kind"] == "private"
    put = await owner.api("PUT", f"/api/rooms/{private}/members/{await user_id(friend)}")
    assert put.status_code == 204, put.text
    dm = await friend.api("POST", "/api/direct", json={"usernames": [owner.username]})
    assert dm.status_code == 201, dm.text
    return owner, friend, outsider, private, dm.json()["id"]


async def test_every_room_route_answers_a_non_member_as_for_an_unknown_room(
    server: Server, make_user, unique: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    owner, friend, outsider, private, dm = await private_world(server, make_user, unique)
    routes = room_routes(tmp_path_factory)
    assert len(routes) >= 8, routes
    other = await user_id(friend)
    for method, path in routes:
        unknown = await answer(outsider, method, fill(path, UNKNOWN, other))
        for room in (private, dm):
            got = await answer(outsider, method, fill(path, room, other))
            assert got == unknown, (method, path, room, got, unknown)
        if method == "GET":
            assert unknown[0] == 404, (path, unknown)
    # The members themselves get in.
    for browser, room in ((friend, private), (owner, dm), (friend, dm)):
        assert (await browser.client.get(f"/rooms/{room}")).status_code == 200
        assert (await browser.api("GET", f"/api/rooms/{room}/messages")).status_code == 200
    # The socket: accepted, then closed 1008, exactly as for an unknown room.
    for room in (private, dm, UNKNOWN):
        ws = await outsider.socket(room)
        assert await closed_code(ws) == 1008
    ws = await friend.socket(private)
    await Inbox(ws).wait_for('id="members"')
    await ws.close()


async def test_a_non_member_waits_as_long_as_for_an_unknown_room(
    server: Server, make_user, unique: str
) -> None:
    _, _, outsider, private, dm = await private_world(server, make_user, unique)

    async def median(room: int) -> float:
        took = []
        for _ in range(7):
            start = time.perf_counter()
            await outsider.api("GET", f"/api/rooms/{room}/messages")
            took.append(time.perf_counter() - start)
        return statistics.median(took)

    unknown = await median(UNKNOWN)
    for room in (private, dm):
        # Loose: only a clearly different order of magnitude would tell them apart.
        assert await median(room) < 10 * unknown + 0.05


async def test_lists_and_the_lobby_show_a_private_room_to_its_members_only(
    server: Server, make_user, unique: str
) -> None:
    owner, friend, outsider, private, dm = await private_world(server, make_user, unique)
    seen = await outsider.api("GET", "/api/rooms")
    assert f"secret-{unique}" not in seen.text
    assert {r["id"] for r in seen.json()}.isdisjoint({private, dm})
    mine = {r["id"]: r["kind"] for r in (await friend.api("GET", "/api/rooms")).json()}
    assert mine[private] == "private" and mine[dm] == "direct"
    page = await outsider.client.get("/")
    assert f"secret-{unique}" not in page.text and f'online-{private}"' not in page.text
    public = server.create_room(f"open-{unique}")
    lobby = Inbox(await outsider.connect("/ws/lobby"))
    await lobby.wait_for(f'id="online-{public}"')
    # A member enters the private room: the outsider's lobby never hears of it.
    inside = Inbox(await friend.socket(private))
    await inside.wait_for('id="members"')
    passer = Inbox(await owner.socket(public))
    await passer.wait_for('id="members"')
    await lobby.wait_for(f'id="online-{public}"')
    assert all(
        f'-{private}"' not in frame and f'-{dm}"' not in frame and unique + '"' not in frame
        for frame in lobby.frames
    )
    for ws in (lobby.ws, inside.ws, passer.ws):
        await ws.close()


async def test_direct_rooms_are_found_again_by_their_people_and_bad_input_is_4xx(
    server: Server, make_user
) -> None:
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    first = await alice.api("POST", "/api/direct", json={"usernames": [bob.username]})
    assert first.status_code == 201 and first.json()["kind"] == "direct"
    again = await bob.api("POST", "/api/direct", json={"usernames": [alice.username.upper()]})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    three = await alice.api(
        "POST", "/api/direct", json={"usernames": [bob.username, carol.username]}
    )
    assert three.status_code == 201 and three.json()["id"] != first.json()["id"]
    members = await carol.api("GET", f"/api/rooms/{three.json()['id']}/members")
    assert sorted(m["username"] for m in members.json()) == sorted(
        [alice.username, bob.username, carol.username]
    )
    bad = {
        "yourself only": ([alice.username], 409),
        "nine people": ([f"x{i}" for i in range(8)], 422),
        "unknown name": (["nobody-here-at-all"], 404),
        "duplicates": ([bob.username, bob.username], 409),
        "empty": ([], 422),
    }
    for why, (names, status) in bad.items():
        response = await alice.api("POST", "/api/direct", json={"usernames": names})
        assert response.status_code == status, (why, response.text)
        assert response.json()["detail"], why


async def test_a_removed_member_is_closed_at_once_and_can_no_longer_load_it(
    server: Server, make_user, unique: str
) -> None:
    owner, friend, outsider, private, _ = await private_world(server, make_user, unique)
    lobby = Inbox(await friend.connect("/ws/lobby"))
    inside = Inbox(await friend.socket(private))
    await inside.wait_for('id="members"')
    gone = await owner.api("DELETE", f"/api/rooms/{private}/members/{await user_id(friend)}")
    assert gone.status_code == 204, gone.text
    assert await closed_code(inside.ws, timeout=2) == 1008
    await lobby.wait_for('id="rooms-changed"')
    assert (await friend.client.get(f"/rooms/{private}")).status_code == 404
    assert private not in {r["id"] for r in (await friend.api("GET", "/api/rooms")).json()}
    # A member leaves by themselves; a non-creator cannot remove others.
    await owner.api("PUT", f"/api/rooms/{private}/members/{await user_id(friend)}")
    await owner.api("PUT", f"/api/rooms/{private}/members/{await user_id(outsider)}")
    refused = await friend.api("DELETE", f"/api/rooms/{private}/members/{await user_id(outsider)}")
    assert refused.status_code == 403
    left = await friend.api("DELETE", f"/api/rooms/{private}/members/{await user_id(friend)}")
    assert left.status_code == 204
    assert (await friend.api("GET", f"/api/rooms/{private}")).status_code == 404
    await lobby.ws.close()
