"""Search and permalinks in real Chromium: type a query in the header box, see the
hits, open one, land on the highlighted message, scroll both ways, then go live."""

from __future__ import annotations

import re

from e2e_support import assert_clean, new_page, seed_messages
from playwright.async_api import Page, expect
from support import Server

DESKTOP = {"width": 1280, "height": 800}
PAGE = 50  # settings.history_page


async def seqs(page: Page) -> list[int]:
    return await page.eval_on_selector_all(
        "#messages [data-seq]", "els => els.map(e => Number(e.dataset.seq))"
    )


async def test_search_open_a_hit_and_scroll_both_ways_from_it(
    browser, server: Server, make_user, unique: str
) -> None:
    room = server.create_room(f"history-{unique}")
    poster = await make_user()
    author = (await poster.api("GET", "/api/me")).json()
    seed_messages(server, room, author["id"], 150)
    # A word no other test writes; typed as a prefix, lower case, without the accent.
    word, typed = f"Zébra{unique[1:]}x", f"zebra{unique[1:]}"
    found = await poster.api(
        "POST", f"/api/rooms/{room}/messages", json={"text": f"Where is the {word}?"}
    )
    target = found.json()["seq"]
    seed_messages(server, room, author["id"], 150)
    page, watch = await new_page(
        browser,
        server,
        f"finder_{unique}",
        viewport=DESKTOP,
        permissions=["clipboard-read", "clipboard-write"],
    )

    # "/" goes to the header's search box; a prefix, in another case and without
    # the accent, finds the message.
    await page.locator("body").press("/")
    await expect(page.locator("#search-input")).to_be_focused()
    await page.keyboard.type(typed)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{server.base}/search?q={typed}")
    hit = page.locator(".hit")
    await expect(hit).to_have_count(1)
    await expect(hit.locator("mark")).to_have_text(word)
    await expect(page.locator(".search-room")).to_have_text(f"history-{unique}")

    # The hit opens its permalink: the message in view, highlighted, history both sides.
    await hit.locator("a").click()
    await expect(page).to_have_url(f"{server.base}/rooms/{room}/messages/{target}")
    marked = page.locator(f"#messages .msg[data-seq='{target}']")
    await expect(marked).to_have_class(re.compile(r"\bhighlight\b"))
    await expect(marked).to_be_in_viewport()
    assert await seqs(page) == list(range(target - PAGE, target + PAGE + 1))
    # Not live while newer history is still to load (live messages would land after a gap).
    await expect(page.locator("#send-form button[type=submit]")).to_be_disabled()

    # Up: the page before, the message staying where it was.
    await page.locator("#messages").evaluate("e => { e.scrollTop = 0 }")
    await expect(page.locator("#messages .msg")).to_have_count(3 * PAGE + 1)
    assert (await seqs(page))[0] == target - 2 * PAGE
    await marked.scroll_into_view_if_needed()

    # Down: newer pages until the newest, then the socket connects and it is live.
    for count in (4 * PAGE + 1, 5 * PAGE + 1):
        await page.locator("#messages").evaluate("e => { e.scrollTop = e.scrollHeight }")
        await expect(page.locator("#messages .msg")).to_have_count(count)
    assert (await seqs(page))[-1] == target + 150
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    sent = await poster.api("POST", f"/api/rooms/{room}/messages", json={"text": "Live again"})
    assert sent.status_code == 201
    await expect(page.locator("#messages .msg .text").last).to_have_text("Live again")
    assert await seqs(page) == list(range(target - 2 * PAGE, target + 152))

    # Copy link puts the message's permalink on the clipboard.
    await marked.hover()
    await marked.locator(".copy-link").click()
    await expect(marked.locator(".copy-link")).to_have_attribute("data-copied", "")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == f"{server.base}/rooms/{room}/messages/{target}"
    assert_clean(watch)
