"""First run: the first account is the admin (even when several sign up at once),
and anyone makes rooms from the page or the API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from support import Browser, Server, postgres_url, running_server
from test_api import user_id

HTMX = {"HX-Request": "true"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def empty(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on an empty database: nobody has signed up yet. Passwords hash all at
    once, so simultaneous sign-ups reach the database together."""
    settings = {"message_rate": "0", "hash_concurrency": "8"}
    if request.param == "postgres":
        settings["database_url"] = postgres_url("talkroom_first_run")
    data = tmp_path_factory.mktemp(f"first-run-{request.param}")
    with running_server(data, first_run=True, **settings) as srv:
        yield srv


async def test_of_simultaneous_first_signups_exactly_one_is_the_admin(empty: Server) -> None:
    people = [Browser(empty) for _ in range(8)]
    try:
        # Every form first, so the sign-ups themselves go out together.
        await asyncio.gather(*(p.fetch_csrf() for p in people))
        answers = await asyncio.gather(
            *(
                p.client.post(
                    "/register",
                    data={"username": f"early{n}", "password": "x" * 12, "csrf_token": p.csrf},
                )
                for n, p in enumerate(people)
            )
        )
        assert [a.status_code for a in answers] == [303] * len(people)
        me = [(await p.api("GET", "/api/me")).json() for p in people]
        assert sum(m["is_admin"] for m in me) == 1, me
        # The admin's empty home page offers to create a room right there.
        admin = people[[m["is_admin"] for m in me].index(True)]
        home = (await admin.client.get("/")).text
        assert "No rooms yet" in home and 'id="new-room"' in home and "You are an admin" in home
        # A later account is an ordinary one.
        late = Browser(empty)
        assert (await late.register("latecomer")).status_code == 303
        assert (await late.api("GET", "/api/me")).json()["is_admin"] is False
        await late.close()
    finally:
        for p in people:
            await p.close()


async def test_anyone_creates_a_room_from_the_page(server: Server, make_user, unique: str) -> None:
    alice, bob = await make_user(), await make_user()
    home = (await alice.client.get("/")).text
    assert 'id="new-room"' in home and 'name="kind" value="private"' in home
    form = {"name": f"page-{unique}", "description": "From the page", "csrf_token": alice.csrf}
    made = await alice.client.post("/rooms", data={**form, "kind": "public"}, headers=HTMX)
    assert made.status_code == 204, made.text
    room = int(made.headers["hx-redirect"].rpartition("/")[2])
    seen = (await bob.api("GET", f"/api/rooms/{room}")).json()
    assert seen["name"] == f"page-{unique}" and seen["kind"] == "public"
    assert seen["description"] == "From the page"

    # Refused: htmx gets the form back (swapped in place) with why and what was typed.
    again = await alice.client.post("/rooms", data={**form, "kind": "public"}, headers=HTMX)
    assert again.status_code == 200 and 'id="new-room"' in again.text
    assert "exists already" in again.text and f'value="page-{unique}"' in again.text
    odd = await alice.client.post("/rooms", data={**form, "name": "odd", "kind": "secret"})
    assert odd.status_code == 400 and "A room is public or private." in odd.text
    # Without JavaScript: a plain form post and a redirect to the room.
    plain = {**form, "name": f"plain-{unique}", "kind": "private"}
    redirected = await alice.client.post("/rooms", data=plain)
    assert redirected.status_code == 303 and redirected.headers["location"].startswith("/rooms/")


async def test_a_private_rooms_creator_is_its_first_member_and_manages_it(
    server: Server, make_user, unique: str
) -> None:
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    made = await alice.api("POST", "/api/rooms", json={"name": f"mine-{unique}", "kind": "private"})
    assert made.status_code == 201, made.text
    room = made.json()["id"]
    members = (await alice.api("GET", f"/api/rooms/{room}/members")).json()
    assert [m["username"] for m in members] == [alice.username]
    assert (await bob.api("GET", f"/api/rooms/{room}")).status_code == 404
    added = await alice.api("PUT", f"/api/rooms/{room}/members/{await user_id(bob)}")
    assert added.status_code == 204
    assert (await bob.api("GET", f"/api/rooms/{room}")).status_code == 200
    # A member who did not create it cannot add others.
    refused = await bob.api("PUT", f"/api/rooms/{room}/members/{await user_id(carol)}")
    assert refused.status_code == 403
    # The page's form makes a private room the same way.
    page = await carol.client.post(
        "/rooms",
        data={"name": f"carols-{unique}", "kind": "private", "csrf_token": carol.csrf},
        headers=HTMX,
    )
    carols = int(page.headers["hx-redirect"].rpartition("/")[2])
    listed = (await carol.api("GET", f"/api/rooms/{carols}/members")).json()
    assert [m["username"] for m in listed] == [carol.username]
    assert (await bob.client.get(f"/rooms/{carols}")).status_code == 404
