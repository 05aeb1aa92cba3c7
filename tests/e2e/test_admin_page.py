"""The admin page in headless Chromium: htmx creates and deletes a room, and the
people in it are told; a non-admin is refused."""

from __future__ import annotations

from pathlib import Path

from e2e_support import open_page, register_in_page
from playwright.async_api import expect
from support import Server


async def test_an_admin_creates_and_deletes_a_room_in_the_page(
    browser, server: Server, artifacts: Path
) -> None:
    admin, watch = await open_page(browser, server)
    await register_in_page(admin, server, "page_admin")
    server.set_admin("page_admin")
    await admin.goto("/admin")
    await admin.fill("#new-room-name", "admin-e2e")
    await admin.fill("#new-room-description", "Made in the admin page")
    await admin.get_by_role("button", name="Create room").click()
    await expect(admin.locator("#admin-rooms [role=status]")).to_have_text(
        "Created room admin-e2e."
    )
    row = admin.locator("#admin-rooms li", has=admin.locator('input[value="admin-e2e"]'))
    await expect(row).to_have_count(1)
    room = int(await row.get_attribute("data-room") or 0)

    # Someone is in the room when it goes.
    guest, guest_watch = await open_page(browser, server)
    await register_in_page(guest, server, "page_guest")
    await guest.goto(f"/rooms/{room}")
    await expect(guest.locator("#send-form button[type=submit]")).to_be_enabled()

    admin.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Delete").click()
    await expect(admin.locator("#admin-rooms [role=status]")).to_contain_text("Deleted the room")
    await expect(admin.locator(f'#admin-rooms li[data-room="{room}"]')).to_have_count(0)
    await expect(guest.locator("#chat-error")).to_contain_text("admin-e2e was deleted")
    await admin.screenshot(path=str(artifacts / "admin.png"), full_page=True)
    for w in (watch, guest_watch):
        assert w.foreign == []
    assert watch.errors == []


async def test_a_non_admin_is_refused(browser, server: Server) -> None:
    page, watch = await open_page(browser, server)
    await register_in_page(page, server, "page_nobody")
    response = await page.goto("/admin")
    assert response is not None and response.status == 403
    assert watch.foreign == []
