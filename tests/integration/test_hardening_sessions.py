"""Sessions end when they should: a password change or an admin's removal ends every
session of the user and closes their sockets; over https the cookies are ``__Host-``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
import websockets
from scale_support import user_on
from support import CSRF_RE, PASSWORD, Browser, Inbox, Server, running_server
from websockets.exceptions import ConnectionClosed

NEW_PASSWORD = "a brand new passphrase"
HTTPS = {"X-Forwarded-Proto": "https"}


async def closed_code(ws: websockets.ClientConnection, timeout: float = 5) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


async def change_password(browser: Browser, current: str, new: str) -> httpx.Response:
    await browser.fetch_csrf("/account")
    data = {"current_password": current, "new_password": new, "csrf_token": browser.csrf}
    return await browser.client.post("/account/password", data=data)


async def me_status(server: Server, cookies: httpx.Cookies) -> int:
    async with httpx.AsyncClient(base_url=server.base, cookies=cookies) as client:
        return (await client.get("/api/me")).status_code


async def test_a_password_change_ends_every_session_and_closes_their_sockets(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    laptop = Browser(server)  # alice, logged in a second time elsewhere
    assert (await laptop.login(alice.username)).status_code == 303
    stolen = httpx.Cookies(alice.client.cookies)
    sockets = [await alice.socket(room), await laptop.socket(room)]
    bystander = Inbox(await bob.socket(room))
    for ws in sockets:
        await Inbox(ws).wait_for('id="members"')
    await bystander.wait_for('id="members"')

    wrong = await change_password(alice, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    short = await change_password(alice, PASSWORD, "short")
    assert short.status_code == 400 and "at least 8" in short.text
    assert await me_status(server, laptop.client.cookies) == 200  # nothing changed yet

    changed = await change_password(alice, PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 303 and changed.headers["location"] == "/account?done=password"
    assert "Password changed" in (await alice.client.get("/account?done=password")).text
    assert await me_status(server, alice.client.cookies) == 200  # a fresh session here
    assert await me_status(server, laptop.client.cookies) == 401  # the other device is out
    assert await me_status(server, stolen) == 401  # and so is a copy of the old cookie
    assert [await closed_code(ws) for ws in sockets] == [1008, 1008]

    # Other people's sockets are untouched.
    await bob.api("POST", f"/api/rooms/{room}/messages", json={"text": "still open"})
    await bystander.wait_for("still open")
    stranger = Browser(server)
    stranger.client.headers["X-Forwarded-For"] = "198.51.100.200"  # its own login budget
    assert (await stranger.login(alice.username, PASSWORD)).status_code == 400
    assert (await stranger.login(alice.username, NEW_PASSWORD)).status_code == 303
    await bystander.ws.close()
    for browser in (laptop, stranger):
        await browser.close()


async def test_logout_closes_that_sessions_sockets_and_no_other(
    server: Server, make_user, room: int
) -> None:
    phone = await make_user()
    laptop = Browser(server)  # the same person, logged in a second time
    assert (await laptop.login(phone.username)).status_code == 303
    on_phone, on_laptop = Inbox(await phone.socket(room)), Inbox(await laptop.socket(room))
    for inbox in (on_phone, on_laptop):
        await inbox.wait_for('id="members"')

    await laptop.fetch_csrf("/")
    out = await laptop.client.post("/logout", data={"csrf_token": laptop.csrf})
    assert out.status_code == 303
    assert await closed_code(on_laptop.ws) == 1008
    # The phone's session and socket carry on.
    await phone.api("POST", f"/api/rooms/{room}/messages", json={"text": "phone still here"})
    await on_phone.wait_for("phone still here")
    await on_phone.ws.close()
    await laptop.close()


async def test_the_account_page_needs_a_login_and_its_form_the_csrf_token(
    server: Server, make_user
) -> None:
    anonymous = Browser(server)
    assert (await anonymous.client.get("/account")).headers["location"].startswith("/login")
    await anonymous.close()
    alice = await make_user()
    page = await alice.client.get("/account")
    assert 'action="/account/password"' in page.text and CSRF_RE.search(page.text)
    forged = await alice.client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "csrf_token": "x"},
    )
    assert forged.status_code == 403
    assert (await Browser(server).login(alice.username, PASSWORD)).status_code == 303


async def test_guessing_the_current_password_is_throttled(tmp_path: Path) -> None:
    with running_server(tmp_path) as srv:
        alice = await user_on(srv, "guessed")
        for _ in range(5):
            assert (await change_password(alice, "guess", NEW_PASSWORD)).status_code == 400
        blocked = await change_password(alice, PASSWORD, NEW_PASSWORD)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        # Not changed (a change would have ended this session), and the same budget
        # guards the login form: a stolen session gives no extra guesses.
        assert (await alice.client.get("/api/me")).status_code == 200
        assert (await Browser(srv).login(alice.username, PASSWORD)).status_code == 429


async def test_removing_a_user_on_the_admin_page_closes_only_their_sockets(
    server: Server, make_user, room: int
) -> None:
    admin, bob, carol = await make_user(), await make_user(), await make_user()
    server.set_admin(admin.username)
    bob_id = (await bob.api("GET", "/api/me")).json()["id"]
    bob_ws, carol_in = await bob.socket(room), Inbox(await carol.socket(room))
    await Inbox(bob_ws).wait_for('id="members"')
    await carol_in.wait_for('id="members"')  # both are in the room
    await admin.fetch_csrf("/admin")
    removed = await admin.api("DELETE", f"/admin/users/{bob_id}")
    assert removed.status_code == 200 and "Removed the user" in removed.text
    assert await closed_code(bob_ws) == 1008
    assert (await bob.api("GET", "/api/me")).status_code == 401
    await carol.api("POST", f"/api/rooms/{room}/messages", json={"text": "carol stays"})
    await carol_in.wait_for("carol stays")
    await carol_in.ws.close()


async def me_with(server: Server, cookie: str, *, https: bool) -> int:
    headers = {"Cookie": cookie, **(HTTPS if https else {})}
    async with httpx.AsyncClient(base_url=server.base, headers=headers) as client:
        return (await client.get("/api/me")).status_code


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header of the response by cookie name, whole."""
    headers = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return {h.split("=", 1)[0]: h for h in headers}


def cookie_value(header: str) -> str:
    return header.split("=", 1)[1].split(";", 1)[0]


async def test_over_https_the_cookies_are_host_prefixed_and_secure(
    server: Server, unique: str, room: int
) -> None:
    """Behind a TLS proxy (X-Forwarded-Proto from a trusted address) the cookies are
    ``__Host-``: Secure, Path=/, no Domain; the plain names are not read there."""
    async with httpx.AsyncClient(base_url=server.base, headers=HTTPS) as client:
        form = await client.get("/register")
        csrf_header = set_cookies(form)["__Host-talkroom_csrf"]
        csrf = CSRF_RE.search(form.text).group(1)  # type: ignore[union-attr]
        client.cookies.set("__Host-talkroom_csrf", cookie_value(csrf_header))
        data = {"username": f"https_{unique}", "password": PASSWORD, "csrf_token": csrf}
        registered = await client.post("/register", data=data)
        assert registered.status_code == 303, registered.text
        session_header = set_cookies(registered)["__Host-talkroom_session"]
        for header in (csrf_header, session_header):
            attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
            assert {"secure", "httponly"} <= attributes and "domain" not in attributes
            assert re.search(r";\s*Path=/(;|$)", header), header
        session = cookie_value(session_header)
    assert await me_with(server, f"__Host-talkroom_session={session}", https=True) == 200
    # Over https only the __Host- name counts, and over http only the plain one.
    assert await me_with(server, f"talkroom_session={session}", https=True) == 401
    assert await me_with(server, f"__Host-talkroom_session={session}", https=False) == 401
    headers = {"Cookie": f"__Host-talkroom_session={session}", **HTTPS}
    async with websockets.connect(
        server.ws_url(f"/ws/rooms/{room}"),
        additional_headers=headers,
        origin=f"https://127.0.0.1:{server.port}",  # type: ignore[arg-type]
    ) as ws:
        await Inbox(ws).wait_for('id="members"')


async def test_sessions_end_after_their_idle_and_absolute_lifetimes(tmp_path: Path) -> None:
    """Checked with a copy of the cookie, as a thief would hold it (the browser's own
    copy expires with the session's absolute lifetime anyway)."""
    for name, settings in (
        ("idle", {"session_idle": "1", "session_max_age": "3600"}),
        ("absolute", {"session_idle": "3600", "session_max_age": "1"}),
    ):
        with running_server(tmp_path / name, **settings) as srv:
            alice = await user_on(srv, f"lifetime_{name}")
            cookie = f"talkroom_session={alice.client.cookies['talkroom_session']}"
            assert await me_with(srv, cookie, https=False) == 200
            await asyncio.sleep(1.5)
            assert await me_with(srv, cookie, https=False) == 401, name
            await alice.close()
