"""Formatted messages in real Chromium: bold, code, a quote and a code block render
as such, light and dark; a javascript: link is plain text and clicking it runs nothing."""

from __future__ import annotations

from pathlib import Path

from e2e_support import assert_clean, new_page, open_room, screenshot
from playwright.async_api import expect
from support import Server

TEXT = (
    "**Deploy** is *done*, run `make check` @{bob}\n"
    "> did the tests pass?\n\n"
    "- yes\n- all of them\n\n"
    "```\ndef f(x):\n    return  x * 2\n```\n"
    "[click me](javascript:window.__pwned=1) <b onmouseover=alert(1)>no</b>"
)


async def test_formatting_renders_and_a_javascript_link_is_inert(
    browser, server: Server, artifacts: Path, unique: str
) -> None:
    room = server.create_room(f"format-{unique}")
    alice, watch_a = await new_page(browser, server, f"fa{unique}", color_scheme="light")
    bob, watch_b = await new_page(browser, server, f"fb{unique}", color_scheme="dark")
    for page in (alice, bob):
        await open_room(page, server, room)
    await alice.fill("#message-input", TEXT.format(bob=f"fb{unique}"))
    await alice.keyboard.press("Enter")

    for page in (bob, alice):  # live, then after a reload (the stored HTML)
        text = page.locator(".msg .text").last
        await expect(text.locator("strong")).to_have_text("Deploy")
        await expect(text.locator("em")).to_have_text("done")
        await expect(text.locator("p > code")).to_have_text("make check")
        await expect(text.locator("blockquote")).to_have_text("did the tests pass?")
        await expect(text.locator("li")).to_have_text(["yes", "all of them"])
        await expect(text.locator(f'.mention[data-mention="fb{unique}"]')).to_be_visible()
        code = await text.locator("pre code").text_content()
        assert code == "def f(x):\n    return  x * 2\n"  # whitespace kept
        assert await text.locator("pre").evaluate("e => getComputedStyle(e).whiteSpace") == "pre"
        await expect(text.locator("a")).to_have_count(0)
        await expect(text.locator("b")).to_have_count(0)
        await expect(text).to_contain_text("[click me](javascript:window.__pwned=1)")
        await text.get_by_text("click me").click()
        await text.get_by_text("<b onmouseover=alert(1)>no</b>").hover()
        assert await page.evaluate("window.__pwned") is None
        await page.reload()
        await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()

    dark = await bob.locator(".msg .text pre").last.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    light = await alice.locator(".msg .text pre").last.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert dark != light  # each theme has its own code background
    await screenshot(alice, artifacts / "formatting-light.png")
    await screenshot(bob, artifacts / "formatting-dark.png")
    assert_clean(watch_a, watch_b)
