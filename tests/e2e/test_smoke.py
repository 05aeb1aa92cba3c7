"""Two people register in real Chromium, open a room, and talk."""

from __future__ import annotations

from pathlib import Path

from e2e_support import open_page, register_in_page
from playwright.async_api import expect
from support import Server


async def test_two_pages_chat_with_each_other(browser, server: Server, artifacts: Path) -> None:
    room = server.create_room("e2e-smoke", "Where the browsers meet")
    alice, watch_a = await open_page(browser, server)
    bob, watch_b = await open_page(browser, server)
    await register_in_page(alice, server, "alice_e2e")
    await register_in_page(bob, server, "bob_e2e")

    for page in (alice, bob):
        await page.get_by_role("link", name="e2e-smoke").click()
        await expect(page).to_have_url(f"{server.base}/rooms/{room}")
        await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    await expect(alice.locator("#members li", has_text="bob_e2e")).to_be_visible()

    await alice.fill("#message-input", "Hello <b>Bob</b>")
    await alice.keyboard.press("Enter")
    await expect(alice.locator("#message-input")).to_have_value("")
    await expect(bob.locator(".msg .text", has_text="Hello <b>Bob</b>")).to_be_visible()

    await bob.fill("#message-input", "Hi Alice!")
    await bob.click("#send-form button[type=submit]")
    await expect(alice.locator(".msg .text", has_text="Hi Alice!")).to_be_visible()
    await expect(alice.locator(".msg")).to_have_count(2)
    await expect(bob.locator(".msg")).to_have_count(2)
    await expect(alice.locator(f"#online-{room}")).to_have_text("2")

    await alice.screenshot(path=str(artifacts / "smoke-alice.png"))
    for watch in (watch_a, watch_b):
        assert watch.errors == []
        assert watch.foreign == []
