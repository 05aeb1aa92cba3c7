"""From an empty database to an admin with a room and a DM, in Chromium alone: the
newcomer signs up (and is the admin), creates a room in the page, chats, and starts
a direct conversation from the who-is-here list. No terminal anywhere."""

from __future__ import annotations

import re
from pathlib import Path

from e2e_support import assert_clean, new_page, open_page, register_in_page, send
from playwright.async_api import expect
from support import running_server


async def test_a_newcomer_goes_from_nothing_to_a_room_and_a_dm(browser, tmp_path: Path) -> None:
    with running_server(tmp_path / "data", first_run=True, message_rate="0") as server:
        newcomer, watch1 = await open_page(browser, server)
        await newcomer.goto("/register")
        await expect(newcomer.locator(".first-run")).to_contain_text("will be the admin")
        await register_in_page(newcomer, server, "newcomer")

        # The empty home page of the admin offers to create a room right there.
        welcome = newcomer.locator(".welcome")
        await expect(welcome).to_contain_text("No rooms yet")
        await expect(welcome).to_contain_text("You are an admin")
        await expect(newcomer.locator(".topbar a[href='/admin']")).to_be_visible()
        await newcomer.fill("#new-room-name", "general")
        await newcomer.fill("#new-room-description", "Anything goes")
        await newcomer.check("input[name=kind][value=public]")
        await newcomer.locator("#new-room button[type=submit]").click()
        await expect(newcomer).to_have_url(re.compile(r"/rooms/\d+$"))
        await expect(newcomer.locator("#room-title")).to_have_text("general")
        room = int(newcomer.url.rpartition("/")[2])
        await expect(newcomer.locator("#send-form button[type=submit]")).to_be_enabled()
        await send(newcomer, "hello, is anyone here?")

        # A second person signs up (an ordinary user) and finds the room in the list.
        friend, watch2 = await new_page(browser, server, "friend")
        await expect(friend.locator(".topbar a[href='/admin']")).to_have_count(0)
        await friend.locator(f'#rooms [data-room-link="{room}"]').click()
        await expect(friend.locator("#messages")).to_contain_text("hello, is anyone here?")
        await send(friend, "I am!")
        await expect(newcomer.locator("#messages")).to_contain_text("I am!")

        # The who-is-here list offers "Message" by everyone but oneself.
        by_friend = newcomer.locator('#members li[data-person="friend"] .message-person')
        await expect(by_friend).to_be_visible()
        await expect(
            newcomer.locator('#members li[data-person="newcomer"] .message-person')
        ).to_be_hidden()
        await by_friend.click()
        await expect(newcomer.locator("#room-title")).to_have_text("friend")
        await expect(newcomer.locator("#send-form button[type=submit]")).to_be_enabled()
        await send(newcomer, "just between us")

        # The friend's sidebar gets the DM live, with a dot saying the newcomer is online.
        dm = friend.locator(".directs a", has_text="newcomer")
        await expect(dm).to_be_visible(timeout=20_000)
        await expect(dm.locator('.person[data-person="newcomer"] .dot.online')).to_have_count(1)
        await dm.click()
        await expect(friend.locator("#messages")).to_contain_text("just between us")
        # And, once the friend's DM socket is in, the newcomer's sidebar shows the
        # friend online by the DM.
        await expect(friend.locator("#members li")).to_have_count(2)
        await newcomer.reload()
        mine = newcomer.locator(".directs a", has_text="friend")
        await expect(mine.locator('.person[data-person="friend"] .dot.online')).to_have_count(1)

        # The admin page makes an invitation link (shown once) and revokes it.
        await newcomer.locator(".topbar a[href='/admin']").click()
        await newcomer.get_by_role("button", name="Make a link").click()
        link = await newcomer.locator("#invite-link").input_value()
        assert re.fullmatch(rf"{re.escape(server.base)}/invite/[\w-]{{32}}", link), link
        guest, watch3 = await open_page(browser, server)
        await guest.goto(link)
        await expect(guest.locator("h2")).to_have_text("You are invited")
        await expect(guest.locator("#username")).to_have_value("")
        newcomer.once("dialog", lambda dialog: dialog.accept())
        await newcomer.locator("#admin-invitations li[data-invitation] button").click()
        await expect(newcomer.locator("#admin-invitations [role=status]")).to_contain_text(
            "no longer works"
        )
        answer = await guest.reload()
        assert answer is not None and answer.status == 400
        await expect(guest.locator(".sign-up-closed")).to_contain_text("withdrawn")
        assert_clean(watch1, watch2, watch3, allowed=("400",))
