"""A 375 px wide phone: the room list folds behind a button; reading and sending work."""

from __future__ import annotations

from pathlib import Path

from e2e_support import assert_clean, new_page, screenshot
from playwright.async_api import expect
from support import Server

PHONE = {
    "viewport": {"width": 375, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


async def no_sideways_scrolling(page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375


async def test_phone_reads_and_sends(
    browser, server: Server, make_user, unique: str, artifacts: Path
) -> None:
    room = server.create_room(f"trip-{unique}", "Plans for the weekend away")
    friend = await make_user(f"sam_{unique}")
    page, watch = await new_page(browser, server, f"pat_{unique}", **PHONE)

    # With no room open, the room list is the page.
    link = page.locator(f'#rooms [data-room-link="{room}"]')
    await expect(link).to_be_visible()
    await no_sideways_scrolling(page)
    await link.tap()
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    await expect(page.locator("#rooms")).to_be_hidden()
    toggle = page.locator(".rooms-toggle")
    await expect(toggle).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "false")

    # Read: a long word and a link from someone else wrap inside the screen.
    long_word = "Supercalifragilisticexpialidocious" * 3
    for text in (f"Train at 9:40, tickets here: https://example.com/t/{long_word}", "See you!"):
        response = await friend.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
        assert response.status_code == 201, response.text
    await expect(page.locator(".msg .text").last).to_have_text("See you!")
    await no_sideways_scrolling(page)
    box = await page.locator(".msg").first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375

    # Send: tap the box, type, tap Send.
    await page.locator("#message-input").tap()
    await page.locator("#message-input").type("Perfect, I'll bring snacks")
    await page.locator("#send-form button[type=submit]").tap()
    await expect(page.locator("#message-input")).to_have_value("")
    await expect(page.locator(".msg .text").last).to_have_text("Perfect, I'll bring snacks")
    for selector in ("#message-input", "#send-form button[type=submit]", ".msg >> nth=-1"):
        box = await page.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 375, selector
        assert box["y"] + box["height"] <= 740, selector
    await screenshot(page, artifacts / "phone.png")

    # The box grows with what is typed; the newest message stays in sight.
    for n in range(10):
        text = f"Packing list item {n}"
        response = await friend.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
        assert response.status_code == 201, response.text
    await expect(page.locator(".msg .text").last).to_have_text("Packing list item 9")
    assert await page.locator("#messages").evaluate("e => e.scrollHeight > e.clientHeight")
    before = await page.locator("#message-input").bounding_box()
    for line in ("Also:", "- blanket", "- thermos"):
        await page.keyboard.type(line)
        await page.keyboard.press("Shift+Enter")
    after = await page.locator("#message-input").bounding_box()
    assert before and after and after["height"] > before["height"] + 40
    await expect(page.locator(".msg").last).to_be_in_viewport(ratio=1)
    await page.locator("#message-input").fill("")

    # The room list opens as a drawer and closes with Escape.
    await toggle.tap()
    await expect(page.locator("#rooms")).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Escape")
    await expect(page.locator("#rooms")).to_be_hidden()
    await toggle.tap()
    await link.tap()  # picking a room closes it too
    await expect(page.locator("#rooms")).to_be_hidden()

    assert_clean(watch)
