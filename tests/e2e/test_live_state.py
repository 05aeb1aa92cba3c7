"""The page a client builds from live fragments equals the page a reload renders."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from e2e_support import (
    assert_clean,
    message_ids,
    new_page,
    open_page,
    open_room,
    register_in_page,
    send,
)
from playwright.async_api import WebSocket, expect
from support import Inbox, Server


async def test_live_fragments_equal_a_fresh_render(
    browser, server: Server, make_user, unique: str
) -> None:
    room = server.create_room(f"busy-{unique}")
    page, watch = await new_page(browser, server, f"watcher_{unique}")
    await open_room(page, server, room)
    posters = [await make_user() for _ in range(3)]
    visitors = [await make_user() for _ in range(3)]

    async def post_burst(poster, n: int) -> None:
        for i in range(n):
            response = await poster.api(
                "POST", f"/api/rooms/{room}/messages", json={"text": f"{poster.username} {i}"}
            )
            assert response.status_code == 201, response.text

    async def drop_in(visitor, visits: int) -> None:
        # Join, say something, leave; again. Each visit is a join and a leave line.
        for i in range(visits):
            ws = await visitor.socket(room)
            inbox = Inbox(ws)
            await inbox.wait_for('id="members"')
            await ws.send(json.dumps({"message": f"{visitor.username} visit {i}"}))
            await inbox.wait_for(f"{visitor.username} visit {i}")
            await ws.close()

    async def type_along(n: int) -> None:
        for i in range(n):
            await send(page, f"watcher {i}")

    await asyncio.gather(
        *(post_burst(p, 10) for p in posters),
        *(drop_in(v, 2) for v in visitors),
        type_along(4),
    )
    total = 3 * 10 + 3 * 2 + 4  # under one history page, so a reload shows them all
    await expect(page.locator("#messages .msg")).to_have_count(total)
    for visitor in visitors:
        for kind in ("join", "leave"):
            notice = f'.notice[data-notice="{kind}"][data-user="{visitor.username}"]'
            await expect(page.locator(notice)).to_have_count(2)
    await expect(page.locator("#members li")).to_have_count(1)

    live = await message_ids(page)
    seqs = await page.eval_on_selector_all(
        "#messages [data-seq]", "els => els.map(e => Number(e.dataset.seq))"
    )
    assert seqs == list(range(1, total + 1))  # each once, in order
    await page.reload()
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    assert await message_ids(page) == live

    assert_clean(watch)


async def eventually(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_the_home_page_counts_follow_people_without_a_reload(
    browser, server: Server, make_user, unique: str
) -> None:
    room = server.create_room(f"lively-{unique}")
    page, watch = await open_page(browser, server)
    sockets: list[WebSocket] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    await register_in_page(page, server, f"home_{unique}")  # lands on the home page
    badge = page.locator(f"#online-{room}")
    await expect(badge).to_have_text("0")
    await eventually(lambda: [s.url for s in sockets] == [server.ws_url("/ws/lobby")])
    visitor = await make_user()
    async with await visitor.socket(room) as ws:
        await Inbox(ws).wait_for('id="members"')
        # Well inside the sidebar's 15 s refresh: this came over the lobby socket.
        await expect(badge).to_have_text("1", timeout=4000)
    await expect(badge).to_have_text("0", timeout=4000)
    await open_room(page, server, room)  # the room's socket carries the counts now
    await expect(badge).to_have_text("1")
    await eventually(lambda: sockets[0].is_closed())  # the lobby socket went with the page
    assert_clean(watch)
