"""The account page in Chromium: a password change logs the other browser out (its
socket closes, its next page is the login); the sessions list names both browsers and
logs one out; an avatar and a display name set there show in a message on another
user's browser, and a user without an avatar shows initials."""

from __future__ import annotations

import io

from e2e_support import assert_clean, new_page, open_page, open_room, send
from PIL import Image
from playwright.async_api import Page, expect
from support import PASSWORD, Server

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
NEW_PASSWORD = "a brand new passphrase"
DISCONNECTED = "You are disconnected"
LOADED = """() => [...document.querySelectorAll("#messages .msg img.avatar")]
  .some((i) => i.complete && i.naturalWidth === 128)"""


async def log_in(page: Page, server: Server, username: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{server.base}/")


async def test_a_password_change_logs_the_other_browser_out_and_sessions_log_out_one(
    browser, server: Server, unique: str, room: int
) -> None:
    name = f"acct_{unique}"
    desk, watch1 = await new_page(browser, server, name)
    laptop, watch2 = await open_page(browser, server, user_agent=FIREFOX)
    await log_in(laptop, server, name)
    await open_room(laptop, server, room)

    # Both sessions are listed by device, this one marked.
    await desk.goto("/account")
    sessions = desk.locator("#sessions .session")
    await expect(sessions).to_have_count(2)
    await expect(desk.locator("#sessions .session[data-current]")).to_contain_text("This browser")
    await expect(sessions.filter(has_text="Firefox on Windows")).to_have_count(1)

    # A new password here: the other browser's socket closes, and it is logged out.
    await desk.fill("#current-password", PASSWORD)
    await desk.fill("#new-password", NEW_PASSWORD)
    await desk.get_by_role("button", name="Change password").click()
    await expect(desk.locator(".admin-notice")).to_contain_text("Password changed")
    await expect(laptop.locator("#connection")).to_contain_text(DISCONNECTED, timeout=10_000)
    await expect(laptop.locator("#send-form button[type=submit]")).to_be_disabled()
    await laptop.get_by_role("link", name="Account").click()
    await expect(laptop).to_have_url(f"{server.base}/login?next=/account")
    await expect(desk.locator("#sessions .session")).to_have_count(1)

    # Logged in again there; "Log out" on that row from here ends it.
    await log_in(laptop, server, name, NEW_PASSWORD)
    await open_room(laptop, server, room)
    await desk.reload()
    row = desk.locator("#sessions .session", has_text="Firefox on Windows")
    await expect(row).to_have_count(1)
    await row.get_by_role("button", name="Log out").click()
    await expect(desk.locator(".admin-notice")).to_contain_text("That session was logged out")
    await expect(desk.locator("#sessions .session")).to_have_count(1)
    await expect(laptop.locator("#connection")).to_contain_text(DISCONNECTED, timeout=10_000)
    await laptop.reload()
    await expect(laptop).to_have_url(f"{server.base}/login?next=/rooms/{room}")
    # This browser is still in.
    await desk.goto(f"/rooms/{room}")
    await expect(desk.locator("#send-form button[type=submit]")).to_be_enabled()
    assert_clean(watch1, watch2)


def avatar_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (240, 160), (20, 160, 90)).save(out, "PNG")
    return out.getvalue()


async def test_an_avatar_and_display_name_show_on_another_browser_and_initials_without(
    browser, server: Server, unique: str, room: int
) -> None:
    alice, watch1 = await new_page(browser, server, f"alice_{unique}")
    bob, watch2 = await new_page(browser, server, f"bob_{unique}")
    await alice.goto("/account")
    await alice.fill("#display-name", "Alice Liddell")
    await alice.get_by_role("button", name="Save name").click()
    await expect(alice.locator(".admin-notice")).to_contain_text("Display name saved")
    await alice.set_input_files(
        "#avatar-file", files=[{"name": "me.png", "mimeType": "image/png", "buffer": avatar_png()}]
    )
    await alice.get_by_role("button", name="Upload avatar").click()
    await expect(alice.locator(".admin-notice")).to_contain_text("Avatar saved")
    await expect(alice.locator(".face-preview img.avatar")).to_have_count(1)

    await alice.goto("/")
    await open_room(alice, server, room)
    await open_room(bob, server, room)
    await send(alice, "a face to the name")
    mine = bob.locator("#messages .msg", has_text="a face to the name")
    await expect(mine.locator(".display-name")).to_have_text("Alice Liddell")
    image = mine.locator("img.avatar")
    await expect(image).to_have_count(1)
    # The image really loaded (a logged-in fetch of the versioned URL).
    await bob.wait_for_function(LOADED, timeout=10_000)
    # Bob has no avatar: his initials, in a colour, no image.
    await send(bob, "just initials")
    his = alice.locator("#messages .msg", has_text="just initials")
    await expect(his.locator(".avatar.initials")).to_have_text("BN")
    await expect(his.locator("img")).to_have_count(0)
    assert "hue-" in (await his.locator(".avatar.initials").get_attribute("class") or "")
    # Who is here shows alice's face too.
    await expect(bob.locator("#members [data-person] img.avatar")).to_have_count(1)
    assert_clean(watch1, watch2)
