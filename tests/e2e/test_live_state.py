"""The page a client builds from live fragments equals the page a reload renders."""

from __future__ import annotations

import asyncio
import json

from e2e_support import assert_clean, message_ids, new_page, open_room, send
from playwright.async_api import expect
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
