"""Mentions, unread badges and typing in the page: two tabs of one user, and another user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e_support import assert_clean, new_page, open_room
from playwright.async_api import expect
from support import Server, postgres_url, running_server


async def test_mentions_unread_badges_and_typing_in_two_tabs(
    browser, tmp_path: Path, unique: str
) -> None:
    # A server of its own: the tab title counts every readable room, and the shared
    # server's other rooms hold other tests' messages.
    with running_server(tmp_path / "data", message_rate="0") as server:
        await badges_and_typing(browser, server, unique)


async def badges_and_typing(browser, server: Server, unique: str) -> None:
    main = server.create_room(f"main-{unique}")
    side = server.create_room(f"side-{unique}")
    bob_name = f"mbob_{unique}"  # a prefix no other test's user has
    tab1, watch1 = await new_page(browser, server, bob_name)
    tab2 = await tab1.context.new_page()  # the same browser: the same session
    await tab2.goto("/")
    alice, watch2 = await new_page(browser, server, f"alice_{unique}")
    await open_room(tab1, server, side)
    await open_room(alice, server, main)

    # Autocomplete, keyboard only: "@bo" offers bob; Escape closes, arrows move, Tab takes.
    box = alice.locator("#message-input")
    await box.fill("")
    await box.press_sequentially("hey @mbob_")
    options = alice.locator("#mention-options [role=option]")
    await expect(options.first).to_have_text(bob_name)
    await box.press("Escape")
    await expect(alice.locator("#mention-options")).to_be_hidden()
    await box.press_sequentially(unique[:1])
    await expect(options.first).to_have_text(bob_name)
    await box.press("ArrowDown")
    await box.press("ArrowUp")
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await box.press("Tab")
    await expect(box).to_have_value(f"hey @{bob_name} ")
    await box.press_sequentially("look")
    await box.press("Enter")
    await expect(box).to_have_value("")
    mention = alice.locator(f'#messages .mention[data-mention="{bob_name}"]')
    await expect(mention).to_have_text(f"@{bob_name}")

    # Both of bob's tabs: the badge in the sidebar and the tab title, live.
    for tab in (tab1, tab2):
        counts = tab.locator(f"#unread-{main}")
        await expect(counts.locator(".unread-count")).to_have_text("1")
        await expect(counts.locator(".mention-count")).to_have_text("@1")
        await expect(tab).to_have_title(re.compile(r"^\(1\) "))

    # Bob opens the room in one tab: the "new messages" line, his mention stands
    # out, and reading clears the badge and title in both tabs.
    await open_room(tab1, server, main)
    await expect(tab1.locator("#messages .unread-line")).to_be_visible()
    mine = tab1.locator(f'#messages .mention[data-mention="{bob_name}"]')
    plain = await alice.locator("#messages .mention").first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert await mine.evaluate("el => getComputedStyle(el).backgroundColor") != plain
    for tab in (tab1, tab2):
        await expect(tab.locator(f"#unread-{main}")).to_have_attribute("data-unread", "0")
        await expect(tab.locator(f"#unread-{main} .mention-count")).to_have_count(0)
        await expect(tab).not_to_have_title(re.compile(r"^\("))

    # Typing: alice sees bob typing, and the note goes when his message arrives.
    await tab1.locator("#message-input").press_sequentially("on my way")
    await expect(alice.locator("#typing")).to_have_text(f"{bob_name} is typing…")
    await tab1.keyboard.press("Enter")
    await expect(alice.locator("#messages .msg").last).to_contain_text("on my way")
    await expect(alice.locator("#typing")).to_have_text("")
    await expect(tab1.locator("#typing")).to_have_text("")  # never one's own

    assert_clean(watch1, watch2)
    await tab1.context.close()
    await alice.context.close()


@pytest.fixture
def workers_db() -> str:
    return postgres_url("talkroom_e2e_unread_workers")


@pytest.mark.redis
@pytest.mark.postgres
async def test_unread_badges_follow_on_two_tabs_on_two_workers(
    browser, tmp_path: Path, workers_db: str, unique: str
) -> None:
    """Bob's two tabs sit on two servers sharing PostgreSQL and Redis: a mention's
    badges reach both (his user channel, across workers), and reading in one clears
    the other's."""
    from integration.scale_support import redis_db, servers, user_on

    with servers(tmp_path, 2, workers_db, redis_db(8), message_rate="0") as (one, other):
        room = one.create_room(f"workers-{unique}")
        bob_name = f"wbob_{unique}"
        tab1, watch = await new_page(browser, one, bob_name)
        tab2 = await tab1.context.new_page()  # the same session: cookies ignore the port
        await tab2.goto(f"{other.base}/")
        alice = await user_on(other, f"walice_{unique}")
        posted = await alice.api(
            "POST", f"/api/rooms/{room}/messages", json={"text": f"@{bob_name} on two workers"}
        )
        assert posted.status_code == 201, posted.text
        for tab in (tab1, tab2):
            counts = tab.locator(f"#unread-{room}")
            await expect(counts.locator(".unread-count")).to_have_text("1")
            await expect(counts.locator(".mention-count")).to_have_text("@1")
            await expect(tab).to_have_title(re.compile(r"^\(1\) "))
        await open_room(tab1, one, room)  # read on the first server...
        counts = tab2.locator(f"#unread-{room}")  # ...cleared on the second
        await expect(counts).to_have_attribute("data-unread", "0")
        await expect(counts.locator(".mention-count")).to_have_count(0)
        await expect(tab2).not_to_have_title(re.compile(r"^\("))
        assert_clean(watch)
        await tab1.context.close()
        await alice.close()
