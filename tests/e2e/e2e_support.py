"""Helpers for driving talkroom pages in Chromium."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, expect
from support import PASSWORD, Server

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class PageWatch:
    """Console errors and any request that leaves 127.0.0.1, for one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def attach(self, page: object) -> None:
        page.on("console", self._console)  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))  # type: ignore[attr-defined]
        page.on("request", lambda req: self._url(req.url))  # type: ignore[attr-defined]
        page.on("websocket", lambda ws: self._url(ws.url))  # type: ignore[attr-defined]

    def _console(self, message: object) -> None:
        if message.type == "error":  # type: ignore[attr-defined]
            where = message.location  # type: ignore[attr-defined]
            self.errors.append(f"{message.text} [{where.get('url')}:{where.get('lineNumber')}]")  # type: ignore[attr-defined]

    def _url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about"}:
            return
        if parts.hostname not in LOCAL_HOSTS:
            self.foreign.append(url)


async def open_page(browser: Browser, server: Server, **context: object) -> tuple[Page, PageWatch]:
    ctx = await browser.new_context(base_url=server.base, **context)  # type: ignore[arg-type]
    page = await ctx.new_page()
    watch = PageWatch()
    watch.attach(page)
    return page, watch


async def register_in_page(page: Page, server: Server, username: str) -> None:
    await page.goto("/register")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{server.base}/")


async def new_page(
    browser: Browser, server: Server, username: str, **context: object
) -> tuple[Page, PageWatch]:
    """A fresh browser context with ``username`` signed up in it."""
    page, watch = await open_page(browser, server, **context)
    await register_in_page(page, server, username)
    return page, watch


async def open_room(page: Page, server: Server, room: int) -> None:
    """Open a room by its link in the room list, as a person would, and wait until live."""
    await page.locator(f'#rooms [data-room-link="{room}"]').click()
    await expect(page).to_have_url(f"{server.base}/rooms/{room}")
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()


async def message_ids(page: Page) -> list[str]:
    """The ids of the chat messages in ``#messages``, in document order."""
    return await page.eval_on_selector_all(
        "#messages [id^='message-']", "els => els.map(e => e.id)"
    )


async def send(page: Page, text: str) -> None:
    """Type into the box and press Enter once the room is live (Enter does nothing
    while the socket is still connecting: the button is disabled, the text stays);
    the box clears once the frame is sent."""
    await expect(page.locator("#send-form button[type=submit]")).to_be_enabled()
    await page.fill("#message-input", text)
    await page.keyboard.press("Enter")
    await expect(page.locator("#message-input")).to_have_value("")


def assert_clean(*watches: PageWatch, allowed: tuple[str, ...] = ()) -> None:
    """No console errors (but those containing one of ``allowed``) and nothing left 127.0.0.1."""
    for watch in watches:
        errors = [e for e in watch.errors if not any(a in e for a in allowed)]
        assert errors == [], errors
        assert watch.foreign == [], watch.foreign


async def screenshot(page: Page, path: object) -> None:
    """A screenshot that leaves the page as it was: Playwright's default caret hiding
    leaves ``style=""`` on text fields, which htmx later copies under the strict CSP."""
    await page.screenshot(path=str(path), caret="initial")


def seed_messages(server: Server, room: int, author_id: int, count: int) -> None:
    """``count`` old messages written straight into the server's SQLite file, as a
    long-lived room would have them (posting thousands through the API takes too long)."""
    path = Path(server.env["TALKROOM_DATA_DIR"]) / "talkroom.db"
    with closing(sqlite3.connect(path, timeout=10)) as db, db:
        (last,) = db.execute("SELECT last_seq FROM rooms WHERE id = ?", (room,)).fetchone()
        start = datetime.now(UTC) - timedelta(minutes=count)
        db.executemany(
            "INSERT INTO messages (room_id, author_id, seq, rev, text, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    room,
                    author_id,
                    last + n,
                    last + n,
                    f"Message number {last + n}",
                    (start + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S.%f"),
                )
                for n in range(1, count + 1)
            ],
        )
        db.execute("UPDATE rooms SET last_seq = ? WHERE id = ?", (last + count, room))
