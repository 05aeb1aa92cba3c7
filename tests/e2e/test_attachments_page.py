"""Attachments in the page, in real Chromium: a pasted image shows as a thumbnail
on another browser and opens in the lightbox; a dropped file uploads with a
progress bar and shows as a download card everywhere."""

from __future__ import annotations

import base64
import io

from e2e_support import assert_clean, new_page, open_room, screenshot
from PIL import Image
from playwright.async_api import Page, expect
from support import Server


def png_base64(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 220)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


# A file made in the page, handed over as a paste or a drop would hand it.
MAKE_FILE = """
([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}
"""


async def paste_image(page: Page, data: str) -> None:
    transfer = await page.evaluate_handle(MAKE_FILE, [data, "screenshot.png", "image/png"])
    await page.evaluate(
        """transfer => document.getElementById("message-input").dispatchEvent(
            new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true})
        )""",
        transfer,
    )


async def drop_file(page: Page, data: bytes, name: str) -> None:
    encoded = base64.b64encode(data).decode()
    transfer = await page.evaluate_handle(MAKE_FILE, [encoded, name, "application/pdf"])
    target = page.locator("#messages")
    await target.dispatch_event("dragenter", {"dataTransfer": transfer})
    await target.dispatch_event("dragover", {"dataTransfer": transfer})
    await expect(page.locator("section.room")).to_have_class("room dropping")
    await target.dispatch_event("drop", {"dataTransfer": transfer})


async def test_paste_an_image_and_open_it_in_the_lightbox_on_another_browser(
    browser, server: Server, unique: str, artifacts
) -> None:
    room = server.create_room(f"pics-{unique}")
    alice, watch_a = await new_page(browser, server, f"alice{unique}")
    bob, watch_b = await new_page(browser, server, f"bob{unique}")
    await open_room(alice, server, room)
    await open_room(bob, server, room)

    await alice.fill("#message-input", "the new logo")
    await paste_image(alice, png_base64(900, 600))
    # The box's text went with it as the caption.
    await expect(alice.locator("#message-input")).to_have_value("")
    seen = bob.locator(".msg").last
    thumb = seen.locator("a.attachment-image img")
    await expect(thumb).to_be_visible(timeout=15_000)
    await expect(seen.locator(".text")).to_contain_text("the new logo")
    await expect(thumb).to_have_attribute("alt", "screenshot.png")
    # Visible comes before loaded: wait for the thumbnail's pixels, 480 wide.
    await bob.wait_for_function(
        "img => img.complete && img.naturalWidth === 480", arg=await thumb.element_handle()
    )

    await thumb.click()
    lightbox = bob.locator("#lightbox")
    await expect(lightbox).to_be_visible()
    full = bob.locator("#lightbox-image")
    href = await seen.locator("a.attachment-image").get_attribute("href")
    await expect(full).to_have_attribute("src", href or "")
    await bob.wait_for_function(
        "() => document.getElementById('lightbox-image').naturalWidth === 900"
    )
    await screenshot(bob, artifacts / "attachments-lightbox.png")
    await bob.keyboard.press("Escape")
    await expect(lightbox).to_be_hidden()
    assert_clean(watch_a, watch_b)


async def test_drop_a_file_with_a_progress_bar_and_see_its_download_card(
    browser, server: Server, unique: str, artifacts
) -> None:
    room = server.create_room(f"docs-{unique}")
    alice, watch_a = await new_page(browser, server, f"alice{unique}")
    bob, watch_b = await new_page(browser, server, f"bob{unique}")
    await open_room(alice, server, room)
    await open_room(bob, server, room)

    report = b"%PDF-1.4\n" + b"0" * 300_000
    await drop_file(alice, report, "quarterly report.pdf")
    bar = alice.locator("#uploads .upload progress")
    # Each file gets its bar while it goes up, full once it is saved.
    await expect(alice.locator("#uploads .upload-name")).to_have_text("quarterly report.pdf")
    await expect(bar).to_have_js_property("value", 100)
    await expect(alice.locator("#uploads .upload.done")).to_have_count(1)

    card = bob.locator(".msg").last.locator("a.attachment-card")
    await expect(card).to_be_visible(timeout=15_000)
    await expect(card.locator(".file-name")).to_have_text("quarterly report.pdf")
    await expect(card.locator(".file-meta")).to_have_text("293.0 KB · application/pdf")
    await expect(card.locator(".file-kind")).to_have_text("PDF")
    await expect(alice.locator(".msg").last.locator("a.attachment-card")).to_be_visible()
    await screenshot(bob, artifacts / "attachments-card.png")
    # The bar goes once the message is there.
    await expect(alice.locator("#uploads .upload")).to_have_count(0)
    assert_clean(watch_a, watch_b)
