"""The account page lists where one is logged in, and logs out one session or every
other one: their cookies stop working (401 on the API) and their sockets close (1008).
A wrong current password changes nothing."""

from __future__ import annotations

import re

import httpx
from support import PASSWORD, Browser, Inbox, Server
from test_hardening_sessions import NEW_PASSWORD, closed_code, me_status

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
SESSION_RE = re.compile(r'<li class="session" data-session="([0-9a-f]{16})"( data-current)?>')


async def device(server: Server, username: str, user_agent: str, address: str) -> Browser:
    """The same person logging in from another device and address."""
    browser = Browser(server)
    browser.client.headers["User-Agent"] = user_agent
    browser.client.headers["X-Forwarded-For"] = address
    assert (await browser.login(username)).status_code == 303
    return browser


async def listed(browser: Browser) -> tuple[str, list[str], str]:
    """The account page, the tags it lists, and this browser's own tag."""
    page = (await browser.client.get("/account")).text
    found = SESSION_RE.findall(page)
    return page, [tag for tag, _ in found], next(tag for tag, here in found if here)


async def end(browser: Browser, path: str) -> int:
    await browser.fetch_csrf("/account")
    response = await browser.client.post(path, data={"csrf_token": browser.csrf})
    return response.status_code


async def test_sessions_are_listed_and_logged_out_one_or_all_others(
    server: Server, make_user, room: int
) -> None:
    desk = await make_user()
    laptop = await device(server, desk.username, FIREFOX, "203.0.113.7")
    phone = await device(server, desk.username, IPHONE, "203.0.113.8")
    page, tags, mine = await listed(desk)
    assert len(tags) == 3 and len(set(tags)) == 3
    assert "Firefox on Windows" in page and "Mobile Safari on iOS" in page
    assert "This browser" in page and "Log out everywhere else" in page
    # A session's id is a bearer secret: the page shows tags, never ids or cookies.
    assert desk.client.cookies["talkroom_session"].split(".")[0] not in page
    _, _, laptop_tag = await listed(laptop)
    _, _, phone_tag = await listed(phone)
    on_laptop, on_phone = Inbox(await laptop.socket(room)), Inbox(await phone.socket(room))
    on_desk = Inbox(await desk.socket(room))
    for inbox in (on_laptop, on_phone, on_desk):
        await inbox.wait_for('id="members"')

    # One session, from another: its cookie is dead and its socket closed.
    assert await end(desk, f"/account/sessions/{laptop_tag}/end") == 303
    assert await me_status(server, laptop.client.cookies) == 401
    assert await closed_code(on_laptop.ws) == 1008
    assert await me_status(server, phone.client.cookies) == 200
    # Another user cannot end it, nor learn that it exists: the same answer as a gone one.
    stranger = await make_user()
    assert await end(stranger, f"/account/sessions/{phone_tag}/end") == 404
    assert await end(desk, f"/account/sessions/{laptop_tag}/end") == 404
    assert await me_status(server, phone.client.cookies) == 200

    # Everywhere else: the phone goes, this browser stays, its socket untouched.
    assert await end(desk, "/account/sessions/others/end") == 303
    assert await me_status(server, phone.client.cookies) == 401
    assert await closed_code(on_phone.ws) == 1008
    assert await me_status(server, desk.client.cookies) == 200
    page, tags, _ = await listed(desk)
    assert tags == [mine] and "Log out everywhere else" not in page
    await desk.api("POST", f"/api/rooms/{room}/messages", json={"text": "desk still here"})
    await on_desk.wait_for("desk still here")

    # Ending one's own session is a logout.
    out = await desk.client.post(f"/account/sessions/{mine}/end", data={"csrf_token": desk.csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert await me_status(server, desk.client.cookies) == 401
    assert await closed_code(on_desk.ws) == 1008
    for browser in (laptop, phone):
        await browser.close()


async def test_a_hostile_user_agent_is_stored_short_and_shown_inert(
    server: Server, make_user
) -> None:
    person = await make_user()
    hostile = '<script>alert(1)</script>\x00<img src=x onerror=alert(2)> hx-get="/admin"' * 20
    other = Browser(server)
    other.client.headers["User-Agent"] = hostile.replace("\x00", "")  # httpx refuses NUL
    assert (await other.login(person.username)).status_code == 303
    page = (await person.client.get("/account")).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert (await other.client.get("/account")).status_code == 200
    await other.close()


async def test_a_wrong_current_password_changes_nothing(
    server: Server, make_user, room: int
) -> None:
    desk = await make_user()
    laptop = await device(server, desk.username, FIREFOX, "203.0.113.9")
    on_laptop = Inbox(await laptop.socket(room))
    await on_laptop.wait_for('id="members"')
    data = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    await desk.fetch_csrf("/account")
    wrong = await desk.client.post("/account/password", data={**data, "csrf_token": desk.csrf})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    # Every session lives on, its socket open, and the old password is still the one.
    for browser in (desk, laptop):
        assert await me_status(server, browser.client.cookies) == 200
    await desk.api("POST", f"/api/rooms/{room}/messages", json={"text": "laptop still open"})
    await on_laptop.wait_for("laptop still open")
    stranger = Browser(server)
    stranger.client.headers["X-Forwarded-For"] = "198.51.100.77"  # its own login budget
    assert (await stranger.login(desk.username, NEW_PASSWORD)).status_code == 400
    assert (await stranger.login(desk.username, PASSWORD)).status_code == 303
    await on_laptop.ws.close()
    for browser in (laptop, stranger):
        await browser.close()


async def test_a_stolen_cookie_is_dead_after_log_out_everywhere_else(
    server: Server, make_user, room: int
) -> None:
    """A copy of another device's cookie (a thief's) gets 401 on the API and a new
    socket opened with it is closed with 1008; nothing is joined."""
    desk = await make_user()
    phone = await device(server, desk.username, IPHONE, "203.0.113.10")
    thief = Browser(server)
    thief.client.cookies = httpx.Cookies(phone.client.cookies)
    assert await me_status(server, thief.client.cookies) == 200
    assert await end(desk, "/account/sessions/others/end") == 303
    assert (await thief.client.get("/api/me")).status_code == 401
    assert (await thief.client.get(f"/api/rooms/{room}/messages")).status_code == 401
    assert (await thief.client.get("/")).headers["location"].startswith("/login")
    assert await closed_code(await thief.socket(room)) == 1008
    assert await me_status(server, desk.client.cookies) == 200
    for browser in (phone, thief):
        await browser.close()
