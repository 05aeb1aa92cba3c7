"""The server goes away and comes back while a page is open in real Chromium."""

from __future__ import annotations

import asyncio
from pathlib import Path

from e2e_support import assert_clean, message_ids, new_page, open_room, send
from playwright.async_api import expect
from support import Browser, Server, free_port, running_server

# What Chromium and htmx log while the server is down (and only then): failed
# socket handshakes, htmx's wsError (logged as the bare event), and a room-list
# poll that found nobody.
OUTAGE_NOISE = (
    "WebSocket connection to",
    "htmx:wsError",
    "[object Event]",
    "htmx:sendError",
    # The room list's 15 s poll may fall in the outage (a slow machine stretches
    # it): htmx logs the failed request as afterRequest next to its sendError.
    "htmx:afterRequest",
    "ERR_CONNECTION_REFUSED",
)


async def api_texts(poster: Browser, room: int) -> list[tuple[str, str]]:
    response = await poster.api("GET", f"/api/rooms/{room}/messages?limit=100")
    return [(f"message-{m['id']}", m["text"]) for m in reversed(response.json())]


async def test_page_rides_out_a_restart(browser, tmp_path: Path) -> None:
    with running_server(tmp_path / "data", message_rate="0") as server:
        await ride_out_a_restart(browser, server)


async def ride_out_a_restart(browser, server: Server) -> None:
    page, watch = await new_page(browser, server, "carol")
    # Nothing here yet: the page says how rooms come to be, and offers to make one.
    await expect(page.locator(".welcome")).to_contain_text("No rooms yet")
    await expect(page.locator(".welcome #new-room")).to_be_visible()
    await expect(page.locator("#rooms ul.rooms:not(.directs) .empty")).to_contain_text("Create one")

    room = server.create_room("standup", "Daily notes")
    await page.goto("/")
    await open_room(page, server, room)
    await expect(page.locator("#messages .empty-room")).to_be_visible()

    poster = Browser(server)
    assert (await poster.register("dave")).status_code == 303
    post = f"/api/rooms/{room}/messages"
    assert (await poster.api("POST", post, json={"text": "before 1"})).status_code == 201
    await send(page, "before 2")
    await expect(page.locator("#messages .msg")).to_have_count(2)
    await expect(page.locator("#messages .empty-room")).to_be_hidden()

    banner = page.locator("#connection")
    button = page.locator("#send-form button[type=submit]")
    await expect(banner).to_be_hidden()
    await asyncio.to_thread(server.stop)
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Reconnecting")
    await expect(button).to_be_disabled()
    # Enter does nothing while offline; the text stays in the box.
    await page.fill("#message-input", "typed while offline")
    await page.keyboard.press("Enter")
    await expect(page.locator("#message-input")).to_have_value("typed while offline")

    # Someone else posts while this page's socket is down. The page's own server
    # stays down meanwhile, so the page cannot be back before the posts (with one
    # server, a quick reconnect would see them live and prove nothing): they go
    # through a second server on the same database, as through another replica.
    replica = Server(free_port(), server.env, server.log.with_name("replica.log"))
    await asyncio.to_thread(replica.start)
    await poster.client.aclose()
    poster.client = type(poster.client)(base_url=replica.base, cookies=poster.client.cookies)
    for n in range(1, 6):
        response = await poster.api("POST", post, json={"text": f"meanwhile {n}"})
        assert response.status_code == 201, response.text
    await asyncio.to_thread(replica.stop)
    await expect(banner).to_be_visible()

    await asyncio.to_thread(server.start)
    await poster.client.aclose()
    poster.client = type(poster.client)(base_url=server.base, cookies=poster.client.cookies)

    # The page reconnects by itself and shows what it missed, once, in order, before
    # anything new is posted: a later live message would reveal the gap and have it
    # repaired anyway, hiding a reconnect that forgot to say what the page holds.
    await expect(banner).to_be_hidden(timeout=15_000)
    await expect(button).to_be_enabled()
    missed = await api_texts(poster, room)
    assert [text for _, text in missed] == [
        "before 1",
        "before 2",
        *(f"meanwhile {n}" for n in range(1, 6)),
    ]
    await expect(page.locator("#messages .msg")).to_have_count(7)
    assert await message_ids(page) == [id_ for id_, _ in missed]

    await page.keyboard.press("Enter")  # the text kept in the box goes now
    await expect(page.locator("#message-input")).to_have_value("")
    # Saved (it came back) before the other person posts: the box empties as the
    # frame is sent, and a post racing it over HTTP may be saved first.
    await expect(page.locator("#messages .msg")).to_have_count(8)
    assert (await poster.api("POST", post, json={"text": "after"})).status_code == 201
    await expect(page.locator("#messages .msg")).to_have_count(9)

    expected = await api_texts(poster, room)
    assert expected[:7] == missed
    assert [text for _, text in expected[7:]] == ["typed while offline", "after"]
    assert await message_ids(page) == [id_ for id_, _ in expected]
    shown = await page.locator("#messages .msg .text").all_inner_texts()
    assert shown == [text for _, text in expected]

    await page.reload()  # the same conversation, from its very start
    await expect(page.locator("#messages .start")).to_contain_text("start of standup")
    assert await message_ids(page) == [id_ for id_, _ in expected]

    await poster.close()
    assert_clean(watch, allowed=OUTAGE_NOISE)
