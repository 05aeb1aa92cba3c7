"""TALKROOM_REGISTRATION=invite (and TALKROOM_ROOM_CREATION=admins): sign-up only
through a link an admin made, on SQLite and PostgreSQL. A used-up, expired, revoked
or forged link answers a clear page and makes no account."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from support import PASSWORD, Browser, Server, execute, postgres_url, query, running_server

HTMX = {"HX-Request": "true"}
LINK_RE = re.compile(r"(?:https?://[^/\s\"]+)?/invite/([A-Za-z0-9_-]{32})")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def closed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    settings = {"message_rate": "0", "registration": "invite", "room_creation": "admins"}
    if request.param == "postgres":
        settings["database_url"] = postgres_url("talkroom_invitations")
    data = tmp_path_factory.mktemp(f"invitations-{request.param}")
    with running_server(data, first_run=True, **settings) as srv:
        yield srv


@pytest.fixture(scope="module")
async def admin(closed: Server) -> AsyncIterator[Browser]:
    """The first account: it needs no link, and is the admin."""
    founder = Browser(closed)
    first = await founder.client.get("/register")
    assert first.status_code == 200 and "will be the admin" in first.text
    assert (await founder.register("boss")).status_code == 303
    assert (await founder.api("GET", "/api/me")).json()["is_admin"] is True
    yield founder
    await founder.close()


async def accounts(server: Server) -> int:
    return (await query(server, "SELECT count(*) FROM users"))[0][0]


async def sign_up(server: Server, token: str, username: str) -> tuple[Browser, object]:
    """Open the link, then send its form, as a browser does."""
    browser = Browser(server)
    page = await browser.client.get(f"/invite/{token}")
    if page.status_code == 200:
        browser.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    else:
        await browser.fetch_csrf("/login")
    data = {"username": username, "password": PASSWORD, "csrf_token": browser.csrf}
    answer = await browser.client.post(f"/invite/{token}", data=data)
    return browser, answer


async def admin_link(admin: Browser, uses: int = 1, days: int = 7) -> tuple[str, int]:
    made = await admin.api(
        "POST", "/admin/invitations", data={"uses": str(uses), "days": str(days)}, headers=HTMX
    )
    assert made.status_code == 200, made.text
    token = LINK_RE.search(made.text).group(1)  # type: ignore[union-attr]
    number = int(re.search(r"Made invitation (\d+)", made.text).group(1))  # type: ignore[union-attr]
    return token, number


async def test_without_a_link_nobody_signs_up(closed: Server, admin: Browser, unique: str) -> None:
    before = await accounts(closed)
    stranger = Browser(closed)
    form = await stranger.client.get("/register")
    assert form.status_code == 403 and "by invitation" in form.text
    assert 'name="password"' not in form.text
    await stranger.fetch_csrf("/login")
    data = {"username": f"s{unique}", "password": PASSWORD, "csrf_token": stranger.csrf}
    refused = await stranger.client.post("/register", data=data)
    assert refused.status_code == 403 and "ask an admin for a link" in refused.text
    assert await accounts(closed) == before
    await stranger.close()


async def test_a_cli_link_signs_up_its_uses_then_is_used_up(
    closed: Server, admin: Browser, unique: str
) -> None:
    out = closed.cli("invite", "--uses", "2", "--days", "3").stdout
    token = LINK_RE.search(out).group(1)  # type: ignore[union-attr]
    stored = await query(closed, "SELECT token_hash FROM invitations")
    assert all(token not in row[0] for row in stored)  # only a hash is kept
    before = await accounts(closed)
    opened = await Browser(closed).client.get(f"/invite/{token}")
    assert opened.status_code == 200 and "You are invited" in opened.text
    # Nothing secret in the form: no name, no password, only the empty fields.
    assert 'name="username" value=""' in opened.text
    assert opened.headers["referrer-policy"] == "no-referrer"
    first, answer1 = await sign_up(closed, token, f"a{unique}")
    second, answer2 = await sign_up(closed, token, f"b{unique}")
    assert answer1.status_code == answer2.status_code == 303  # type: ignore[attr-defined]
    me = (await second.api("GET", "/api/me")).json()
    assert me["username"] == f"b{unique}" and me["is_admin"] is False
    third, answer3 = await sign_up(closed, token, f"c{unique}")
    assert answer3.status_code == 400 and "used up" in answer3.text  # type: ignore[attr-defined]
    assert 'name="password"' not in answer3.text  # type: ignore[attr-defined]
    assert await accounts(closed) == before + 2
    # Used up, it is no longer among the open ones.
    number = re.search(r"Invitation (\d+):", out).group(1)  # type: ignore[union-attr]
    listed = closed.cli("invite", "--list").stdout
    assert not re.search(rf"^{number}\t", listed, re.M), listed
    # Only the link's one purpose: it logged no one in by itself.
    assert (await third.client.get("/api/me")).status_code == 401
    for browser in (first, second, third):
        await browser.close()


async def test_forged_expired_and_revoked_links_make_no_account(
    closed: Server, admin: Browser, unique: str
) -> None:
    token, number = await admin_link(admin, uses=5)
    before = await accounts(closed)
    # One character changed: the link names no invitation.
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (forged, token[:-1], "x" * 32, "not%20a%20token"):
        browser, answer = await sign_up(closed, bad, f"f{unique}")
        assert answer.status_code == 404, (bad, answer.text)  # type: ignore[attr-defined]
        assert "not valid" in answer.text  # type: ignore[attr-defined]
        await browser.close()

    # Time passes: it lasted until the moment it was made.
    await execute(
        closed, "UPDATE invitations SET expires_at = created_at WHERE id = :id", id=number
    )
    page = await Browser(closed).client.get(f"/invite/{token}")
    assert page.status_code == 400 and "This invitation link expired on" in page.text
    browser, answer = await sign_up(closed, token, f"e{unique}")
    assert answer.status_code == 400 and "expired" in answer.text  # type: ignore[attr-defined]
    await browser.close()

    other, other_number = await admin_link(admin)
    revoked = await admin.api("DELETE", f"/admin/invitations/{other_number}", headers=HTMX)
    assert revoked.status_code == 200 and "no longer works" in revoked.text
    assert f'data-invitation="{other_number}"' not in revoked.text
    browser, answer = await sign_up(closed, other, f"r{unique}")
    assert answer.status_code == 400 and "withdrawn" in answer.text  # type: ignore[attr-defined]
    await browser.close()
    assert await accounts(closed) == before


async def test_two_people_racing_for_a_links_last_use_make_one_account(
    closed: Server, admin: Browser, unique: str
) -> None:
    token, _ = await admin_link(admin, uses=1)
    before = await accounts(closed)
    results = await asyncio.gather(*(sign_up(closed, token, f"q{n}{unique}") for n in range(4)))
    statuses = sorted(answer.status_code for _, answer in results)  # type: ignore[attr-defined]
    assert statuses == [303, 400, 400, 400]
    assert await accounts(closed) == before + 1
    for browser, _ in results:
        await browser.close()


async def test_with_room_creation_for_admins_a_user_cannot_make_rooms(
    closed: Server, admin: Browser, unique: str
) -> None:
    token, _ = await admin_link(admin)
    user, answer = await sign_up(closed, token, f"u{unique}")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    refused = await user.api("POST", "/api/rooms", json={"name": f"no-{unique}"})
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Only admins can create rooms here."}
    home = (await user.client.get("/")).text
    assert 'id="new-room"' not in home and "An admin has not created a room yet" in home
    form = {"name": f"no-{unique}", "kind": "public", "csrf_token": user.csrf}
    assert (await user.client.post("/rooms", data=form)).status_code == 403
    made = await admin.api("POST", "/api/rooms", json={"name": f"yes-{unique}"})
    assert made.status_code == 201
    await user.close()
