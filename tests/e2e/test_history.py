"""A long room in real Chromium: opening it, scrolling back, new messages, reloads."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from e2e_support import assert_clean, message_ids, new_page, seed_messages
from playwright.async_api import Page, Route, expect
from support import Server

DESKTOP = {"width": 1280, "height": 800}
OLD = 3000  # messages already in the long room
PAGE = 50  # the history page size (settings.history_page)


async def open_timed(page: Page, room: int) -> float:
    """Seconds from navigation until the room is live (its socket open)."""
    started = time.perf_counter()
    await page.goto(f"/rooms/{room}")
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    return time.perf_counter() - started


async def seqs(page: Page) -> list[int]:
    return await page.eval_on_selector_all(
        "#messages [data-seq]", "els => els.map(e => Number(e.dataset.seq))"
    )


async def scroll_to_top_and_load(page: Page, expect_count: int) -> None:
    await page.locator("#messages").evaluate("e => { e.scrollTop = 0 }")
    await expect(page.locator("#messages .msg")).to_have_count(expect_count)


async def test_long_room_opens_fast_and_scrolls_back_in_place(
    browser, server: Server, make_user, unique: str, artifacts: Path
) -> None:
    big = server.create_room(f"archive-{unique}", "Years of history")
    empty = server.create_room(f"fresh-{unique}")
    poster = await make_user()
    author = (await poster.api("GET", "/api/me")).json()
    seed_messages(server, big, author["id"], OLD)
    page, watch = await new_page(browser, server, f"reader_{unique}", viewport=DESKTOP)

    # A room with thousands of messages opens as fast as an empty one: one page of it.
    timings: dict[str, list[float]] = {"empty": [], "big": []}
    for _ in range(3):
        for name, room in (("empty", empty), ("big", big)):
            timings[name].append(await open_timed(page, room))
    empty_s, big_s = statistics.median(timings["empty"]), statistics.median(timings["big"])
    print(f"open to live, median of 3: empty room {empty_s:.3f} s, {OLD} messages {big_s:.3f} s")
    assert big_s < 2 * empty_s + 0.25, timings
    assert await seqs(page) == list(range(OLD - PAGE + 1, OLD + 1))
    # It opens at the newest message.
    assert await page.locator("#messages").evaluate(
        "e => e.scrollHeight - e.scrollTop - e.clientHeight < 2"
    )

    # Scrolling to the top loads the page before; the message the reader was
    # looking at stays exactly where it was. The request is held until measured.
    held: asyncio.Queue[Route] = asyncio.Queue()
    await page.route("**/messages?before=*", held.put)
    # (Its text: once the page before arrives its name may fold into the group above.)
    first = page.locator(f"#messages [data-seq='{OLD - PAGE + 1}'] .text")
    await page.locator("#messages").evaluate("e => { e.scrollTop = 0 }")
    route = await asyncio.wait_for(held.get(), 5)
    before = await first.evaluate("e => e.getBoundingClientRect().top")
    await route.continue_()
    await page.unroute("**/messages?before=*")
    await expect(page.locator("#messages .msg")).to_have_count(2 * PAGE)
    after = await first.evaluate("e => e.getBoundingClientRect().top")
    assert abs(after - before) < 1, (before, after)
    assert await page.locator("#messages").evaluate("e => e.scrollTop") > 0

    await scroll_to_top_and_load(page, 3 * PAGE)
    assert await seqs(page) == list(range(OLD - 3 * PAGE + 1, OLD + 1))

    # A new message while the reader is scrolled up: no jump, a pill instead.
    scroll_top = await page.locator("#messages").evaluate("e => e.scrollTop")
    response = await poster.api("POST", f"/api/rooms/{big}/messages", json={"text": "Fresh news"})
    assert response.status_code == 201, response.text
    pill = page.locator("#new-messages")
    await expect(pill).to_be_visible()
    await expect(page.locator("#messages .msg .text").last).to_have_text("Fresh news")
    assert await page.locator("#messages").evaluate("e => e.scrollTop") == scroll_top
    await pill.click()
    await expect(pill).to_be_hidden()
    await expect(page.locator("#messages .msg").last).to_be_in_viewport()
    await expect(page.locator("#message-input")).to_be_focused()

    # A reload shows the same conversation, in the same order.
    held_ids = await message_ids(page)
    await page.reload()
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    assert await message_ids(page) == held_ids[-PAGE:]
    await scroll_to_top_and_load(page, 2 * PAGE)
    await scroll_to_top_and_load(page, 3 * PAGE)
    assert await message_ids(page) == held_ids[-3 * PAGE :]
    assert await seqs(page) == list(range(OLD - 3 * PAGE + 2, OLD + 2))

    assert_clean(watch)
