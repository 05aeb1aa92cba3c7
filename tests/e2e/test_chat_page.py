"""The chat page in real Chromium: people talking, presence, links, times, sending."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from e2e_support import assert_clean, message_ids, new_page, open_room, screenshot, send
from playwright.async_api import expect
from support import Inbox, Server, running_server

DESKTOP = {"width": 1280, "height": 800}
ALICE_TZ = "Asia/Kathmandu"  # UTC+05:45: local minutes differ from UTC minutes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, so its screenshots (the README's among them)
    show only the rooms made here."""
    with running_server(tmp_path_factory.mktemp("chat_page"), message_rate="0") as srv:
        yield srv


async def test_two_people_chat_both_ways(
    browser, server: Server, artifacts: Path, make_user
) -> None:
    server.create_room("design-reviews", "Mockups and feedback")
    lounge = server.create_room("lounge", "Coffee, plans and everything else")
    quiet = server.create_room("quiet-corner", "Heads-down time")
    alice, watch_a = await new_page(
        browser, server, "alice", viewport=DESKTOP, timezone_id=ALICE_TZ, color_scheme="light"
    )
    bob, watch_b = await new_page(browser, server, "bob", viewport=DESKTOP, color_scheme="dark")

    await open_room(alice, server, lounge)
    await expect(alice.locator("#members .member-name")).to_have_text(["alice"])
    await expect(alice.locator(f"#online-{lounge}")).to_have_text("1")

    # Bob comes in: Alice sees a quiet join line, his name, and the count change live.
    await open_room(bob, server, lounge)
    join = alice.locator('#messages .notice[data-notice="join"][data-user="bob"]')
    await expect(join).to_have_text(re.compile("bob joined"))
    await expect(alice.locator("#members .member-name")).to_have_text(["alice", "bob"])
    await expect(alice.locator(f"#online-{lounge}")).to_have_text("2")
    await expect(bob.locator("#members .member-name")).to_have_text(["alice", "bob"])

    # Both ways, with Enter and with the button; Shift+Enter makes a new line.
    await send(alice, "Morning! The plan is at https://example.com/plan?week=12.")
    await expect(alice.locator("#message-input")).to_be_focused()
    link = bob.locator(".msg .text a")
    await expect(link).to_have_attribute("href", "https://example.com/plan?week=12")
    await expect(link).to_have_attribute("rel", "nofollow noopener noreferrer")
    await expect(bob.locator(".msg .text").last).to_have_text(
        "Morning! The plan is at https://example.com/plan?week=12."
    )

    await bob.locator("#message-input").type("Morning :)")
    await bob.keyboard.press("Shift+Enter")
    await bob.locator("#message-input").type("Reading it <now>")
    await expect(bob.locator("#message-input")).to_have_value("Morning :)\nReading it <now>")
    await bob.click("#send-form button[type=submit]")
    await expect(bob.locator("#message-input")).to_have_value("")
    await expect(alice.locator(".msg .text").last).to_have_text("Morning :)\nReading it <now>")
    await send(bob, "Looks good, one question about Thursday")
    await send(alice, "Sure, go ahead")
    await send(alice, "I have until ten")
    await expect(alice.locator(".msg")).to_have_count(5)
    await expect(bob.locator(".msg")).to_have_count(5)
    assert await message_ids(alice) == await message_ids(bob)

    # One render for everybody; the viewer's own messages are set apart by CSS.
    mine, theirs = alice.locator(".msg").nth(0), alice.locator(".msg").nth(1)
    assert await mine.evaluate("e => getComputedStyle(e).alignSelf") == "flex-end"
    assert await theirs.evaluate("e => getComputedStyle(e).alignSelf") == "flex-start"
    assert await bob.locator(".msg").nth(1).evaluate("e => getComputedStyle(e).alignSelf") == (
        "flex-end"
    )
    # Consecutive messages of one author are grouped: only the first shows the name.
    grouped = [await m.get_attribute("class") for m in await alice.locator(".msg").all()]
    assert grouped == ["msg", "msg", "msg follows", "msg", "msg follows"]
    header = alice.locator(".msg.follows header").first  # still there for screen readers
    assert await header.evaluate("e => e.getBoundingClientRect().height") <= 1

    # Times are in the reader's own zone.
    time = alice.locator(".msg time").first
    stamp = datetime.fromisoformat(await time.get_attribute("datetime"))  # type: ignore[arg-type]
    local = stamp.astimezone(ZoneInfo(ALICE_TZ))
    shown = await time.inner_text()
    assert local.strftime("%I:%M") in shown or local.strftime("%H:%M") in shown, shown

    await screenshot(alice, artifacts / "desktop-light.png")
    await screenshot(bob, artifacts / "desktop-dark.png")

    # Bob moves to another room: a leave line, and both counts change on Alice's page.
    await open_room(bob, server, quiet)
    leave = alice.locator('#messages .notice[data-notice="leave"][data-user="bob"]')
    await expect(leave).to_have_text(re.compile("bob left"))
    await expect(alice.locator("#members .member-name")).to_have_text(["alice"])
    await expect(alice.locator(f"#online-{lounge}")).to_have_text("1")
    await expect(alice.locator(f"#online-{quiet}")).to_have_text("1")
    await expect(bob.locator(f'[data-room-link="{quiet}"]')).to_have_attribute(
        "aria-current", "page"
    )

    # Near the length limit a counter appears; the limit itself cannot be passed.
    box = alice.locator("#message-input")
    await expect(alice.locator("#message-counter")).to_be_hidden()
    await box.fill("x" * 3950)
    await expect(alice.locator("#message-counter")).to_have_text("50 characters left")
    await box.fill("")
    await expect(alice.locator("#message-counter")).to_be_hidden()

    # A room made after the pages loaded shows up, with its count, once someone is in it.
    later = server.create_room("new-arrivals")
    visitor = await make_user("vic")
    socket = await visitor.socket(later)
    await Inbox(socket).wait_for('id="members"')
    await expect(alice.locator(f'#rooms [data-room-link="{later}"] .badge')).to_have_text("1")
    await socket.close()

    assert_clean(watch_a, watch_b)


async def test_back_and_forward_between_rooms(browser, server: Server) -> None:
    first = server.create_room("book-club", "This month: a long novel")
    second = server.create_room("gardening")
    page, watch = await new_page(browser, server, "erin", viewport=DESKTOP)
    await open_room(page, server, first)
    await send(page, "Chapter three was the best")
    await open_room(page, server, second)
    await expect(page.locator("#members .member-name")).to_have_text(["erin"])

    async def shows(room: int, name: str) -> None:
        await expect(page).to_have_url(f"{server.base}/rooms/{room}")
        await expect(page.locator("#room-title")).to_have_text(name)
        await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
        await expect(page.locator(".topbar")).to_have_count(1)  # the whole page, not a piece
        await expect(page.locator(f'[data-room-link="{room}"]')).to_have_attribute(
            "aria-current", "page"
        )

    await page.go_back()
    await shows(first, "book-club")
    await expect(page.locator(".msg .text")).to_have_text(["Chapter three was the best"])
    await page.go_forward()
    await shows(second, "gardening")
    # Without htmx's snapshot (evicted, or too big to keep) going back loads the page.
    await page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    await page.go_back()
    await shows(first, "book-club")
    await expect(page.locator(".msg .text")).to_have_text(["Chapter three was the best"])
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    restore = await page.request.get(f"/rooms/{first}", headers=headers)
    assert "<html" in await restore.text()
    assert restore.headers["vary"] == "HX-Request"
    assert_clean(watch)
