"""Labels, keyboard use and colour contrast, measured in real Chromium."""

from __future__ import annotations

import pytest
from e2e_support import assert_clean, new_page, open_page, open_room, send
from playwright.async_api import Page, expect
from support import Server

# WCAG 2 contrast ratio of each element's text against the first opaque
# background behind it (none of our text sits on images or gradients).
CONTRAST = """
(selectors) => {
  const rgba = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) throw new Error("unexpected colour " + c);
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c[3] > 0) return c;
    }
    return rgba(getComputedStyle(document.documentElement).backgroundColor);
  };
  const ratio = (fg, bg) => {
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const out = {};
  for (const [name, selector, pseudo] of selectors) {
    const el = document.querySelector(selector);
    if (!el) { out[name] = "missing: " + selector; continue; }
    const fg = rgba(getComputedStyle(el, pseudo || null).color);
    out[name] = Math.round(ratio(fg, background(el)) * 100) / 100;
  }
  return out;
}
"""

CHAT_TEXT = [
    ("brand", ".topbar .brand", None),
    ("me", ".topbar .me", None),
    ("log out", "button.link", None),
    ("rooms title", ".rooms-title", None),
    ("room name", ".rooms a .room-name", None),
    ("current room", ".rooms a[aria-current] .room-name", None),
    ("hash", ".rooms .hash", None),
    ("busy badge", ".badge:not(.idle)", None),
    ("idle badge", ".badge.idle", None),
    ("room title", "#room-title", None),
    ("description", ".room-head .description", None),
    ("here now", ".here-label", None),
    ("member", ".members li", None),
    ("notice", ".notice", None),
    ("author", ".msg .author", None),
    ("time", ".msg time", None),
    ("text", ".msg .text", None),
    ("link", ".msg .text a", None),
    ("inline code", ".msg .text p code", None),
    ("quote", ".msg .text blockquote", None),
    ("code block", ".msg .text pre code", None),
    ("own time", ".msg.own-probe time", None),
    ("own text", ".msg.own-probe .text", None),
    ("send", "#send-form button[type=submit]", None),
    ("placeholder", "#message-input", "::placeholder"),
    ("counter", "#message-counter", None),
    ("error", "#chat-error", None),
    ("banner", "#connection", None),
    ("new messages", "#new-messages", None),
]
AUTH_TEXT = [
    ("heading", ".auth h2", None),
    ("label", ".card label", None),
    ("error", ".form-error", None),
    ("button", ".card button", None),
    ("link", ".card a", None),
]

UNLABELLED = """
() => [...document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), textarea, select, [tabindex]")]
  .filter((el) => {
    const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName)) return !named && !el.labels.length;
    return !named && !el.textContent.trim();
  })
  .map((el) => el.outerHTML.slice(0, 80))
"""


async def contrast(page: Page, selectors: list[tuple[str, str, str | None]]) -> dict[str, object]:
    return await page.evaluate(CONTRAST, [list(s) for s in selectors])


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_colours_meet_wcag_aa(browser, server: Server, make_user, unique, scheme) -> None:
    page, watch = await open_page(browser, server, color_scheme=scheme)
    await page.goto("/login")
    await page.fill("#username", "nobody")
    await page.fill("#password", "wrong password")
    await page.click("button[type=submit]")
    await expect(page.locator(".form-error")).to_be_visible()
    auth = await contrast(page, AUTH_TEXT)

    room = server.create_room(f"contrast-{scheme}-{unique}", "Checking colours")
    server.create_room(f"empty-{scheme}-{unique}")  # an idle badge
    friend = await make_user()
    response = await friend.api(
        "POST",
        f"/api/rooms/{room}/messages",
        json={"text": "see https://example.com `code`\n> quoted\n\n```\nblock\n```"},
    )
    assert response.status_code == 201
    await page.goto("/register")
    auth.update(await contrast(page, [("help", ".card small", None)]))
    await page.fill("#username", f"viewer_{scheme}_{unique}")
    await page.fill("#password", "correct horse battery")
    await page.click("button[type=submit]")
    await open_room(page, server, room)
    await send(page, "my own words")
    await expect(page.locator(".msg")).to_have_count(2)
    # The room's online badge comes from presence, on its own schedule (batched):
    # the messages can arrive first.
    await expect(page.locator(".badge:not(.idle)").first).to_be_attached()
    await expect(page.locator(".notice").first).to_be_attached()  # so are join notices
    # Show what is usually hidden, to measure it (properties, not inline styles).
    await page.evaluate(
        """() => {
          document.querySelector(".msg:last-of-type").classList.add("own-probe");
          for (const id of ["connection", "new-messages", "message-counter"]) {
            document.getElementById(id).hidden = false;
          }
          document.getElementById("message-counter").textContent = "50 characters left";
          document.getElementById("chat-error").textContent = "Something went wrong";
        }"""
    )
    chat = await contrast(page, CHAT_TEXT)
    ratios = {**{f"auth {k}": v for k, v in auth.items()}, **chat}
    print(scheme, ratios)
    poor = {name: r for name, r in ratios.items() if not isinstance(r, float) or r < 4.5}
    assert poor == {}, poor
    assert_clean(watch, allowed=("status of 400",))  # the wrong login, on purpose


async def test_every_control_is_labelled_and_works_from_the_keyboard(
    browser, server: Server, unique: str
) -> None:
    room = server.create_room(f"keys-{unique}", "Mouse-free zone")
    page, watch = await new_page(browser, server, f"keys_{unique}")
    assert await page.evaluate(UNLABELLED) == []

    # Tab reaches the skip link first; it leads to the rooms, Enter opens one.
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#rooms a").first).to_be_focused()
    link = page.locator(f'[data-room-link="{room}"]')
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    await expect(page.locator("#message-input")).to_be_focused()
    assert await page.evaluate(UNLABELLED) == []

    log = page.locator("#messages")
    await expect(log).to_have_attribute("role", "log")
    await expect(log).to_have_attribute("aria-live", "polite")

    await page.keyboard.type("Typed without a mouse")
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg .text")).to_have_text(["Typed without a mouse"])
    await expect(page.locator("#message-input")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#send-form button[type=submit]")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.type("And sent with the button")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg .text")).to_have_count(2)
    assert_clean(watch)
