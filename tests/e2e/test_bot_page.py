"""A bot on a local port, mentioned from a Chromium page: its reply appears in both
browsers, marked as a bot's."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import assert_clean, new_page, open_room, send
from playwright.async_api import expect
from support import Server, running_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from bot_support import BotServer, make_bot  # noqa: E402


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = {"message_rate": "0", "webhook_allow_private": "true", "webhook_poll": "0.1"}
    with running_server(tmp_path_factory.mktemp("bot-page"), **settings) as srv:
        yield srv


async def test_a_mentioned_bot_replies_in_both_browsers(browser, hooks: Server, unique: str):
    bot = await BotServer().start()
    try:
        name = f"helper{unique}"
        make_bot(hooks, name, bot.url)
        room = hooks.create_room(f"bots-{unique}")
        alice, watch_a = await new_page(browser, hooks, f"alice_{unique}")
        bob, watch_b = await new_page(browser, hooks, f"bob_{unique}")
        for page in (alice, bob):
            await open_room(page, hooks, room)
        await send(alice, f"@{name} what time is it")
        for page in (alice, bob):
            answer = page.locator(f'#messages article[data-author="{name}"]')
            await expect(answer.locator(".text")).to_have_text(f"echo: @{name} what time is it")
            await expect(answer.locator(".bot-badge")).to_have_text("bot")
        assert len(bot.received) == 1
        assert_clean(watch_a, watch_b)
        for page in (alice, bob):
            await page.context.close()
    finally:
        await bot.stop()
