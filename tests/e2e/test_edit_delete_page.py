"""Editing and deleting in the page, in real Chromium: Up arrow edits one's last
message in place, Escape cancels, Enter saves; delete asks first; everyone sees it."""

from __future__ import annotations

import re

from e2e_support import assert_clean, message_ids, new_page, open_room, send
from playwright.async_api import Dialog, expect
from support import Server


async def test_edit_in_place_and_delete_with_a_confirmation(
    browser, server: Server, unique: str
) -> None:
    room = server.create_room(f"edits-{unique}")
    alice, watch_a = await new_page(browser, server, f"alice{unique}")
    bob, watch_b = await new_page(browser, server, f"bob{unique}")
    await open_room(alice, server, room)
    await open_room(bob, server, room)
    await send(bob, "Morning")
    # Saved before alice sends: `send` waits only for the frame to leave, so on a
    # busy machine alice's message could take the room's first seq and bob's would
    # be last (the CI rehearsals' "flake": both had arrived, in the other order).
    await expect(alice.locator(".msg").last).to_contain_text("Morning")
    await send(alice, "Teh meeting is at 10")
    mine = alice.locator(".msg").last
    theirs = bob.locator(".msg").last
    await expect(theirs).to_contain_text("Teh meeting is at 10")
    ids = await message_ids(bob)

    # One's own messages offer edit and delete; others' offer neither (not an admin).
    await expect(mine.locator(".msg-edit")).to_be_visible()
    await expect(alice.locator(".msg").first.locator(".msg-actions")).to_be_hidden()
    await expect(theirs.locator(".msg-actions")).to_be_hidden()

    # Up arrow in the empty box edits the last message of one's own; Escape cancels.
    await alice.locator("#message-input").press("ArrowUp")
    editor = mine.locator(".edit-input")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("Teh meeting is at 10")
    await editor.fill("something else")
    await editor.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(alice.locator("#message-input")).to_be_focused()
    await expect(mine.locator(".text")).to_have_text("Teh meeting is at 10")

    # Enter saves: the same element, swapped in place for everyone, marked edited.
    await alice.locator("#message-input").press("ArrowUp")
    await editor.fill("The meeting is at 10:30")
    await editor.press("Enter")
    await expect(theirs.locator(".text")).to_have_text("The meeting is at 10:30")
    await expect(theirs).to_have_attribute("data-edited", re.compile(r"^\d{4}-"))
    await expect(mine.locator(".text")).to_have_text("The meeting is at 10:30")
    await expect(mine.locator(".edited")).to_be_visible()
    await expect(alice.locator("#message-input")).to_be_focused()
    assert await message_ids(bob) == ids

    # Delete asks first: dismissed, nothing happens; accepted, a tombstone everywhere.
    answers = iter([False, True])

    async def answer(dialog: Dialog) -> None:
        assert "Delete this message" in dialog.message
        await (dialog.accept() if next(answers) else dialog.dismiss())

    alice.on("dialog", answer)
    await mine.locator(".msg-delete").click()
    await expect(mine).not_to_have_attribute("data-deleted", "")
    await mine.locator(".msg-delete").click()
    await expect(theirs).to_have_attribute("data-deleted", "")
    await expect(theirs).to_have_text("This message was deleted.")
    await expect(mine).to_have_attribute("data-deleted", "")
    await expect(mine.locator(".msg-actions")).to_have_count(0)
    assert await message_ids(bob) == ids

    # A reload shows the tombstone and the edit-free history as the live page did.
    await bob.reload()
    await expect(bob.locator(".msg").last).to_have_attribute("data-deleted", "")
    await expect(bob.locator("#messages")).not_to_contain_text("meeting")
    assert_clean(watch_a, watch_b)


async def test_reactions_from_the_picker_and_one_click_toggles(
    browser, server: Server, unique: str
) -> None:
    room = server.create_room(f"reactions-{unique}")
    alice, watch_a = await new_page(browser, server, f"alice{unique}")
    bob, watch_b = await new_page(browser, server, f"bob{unique}")
    await open_room(alice, server, room)
    await open_room(bob, server, room)
    await send(alice, "Ship it?")
    on_alice = alice.locator(".msg").last
    on_bob = bob.locator(".msg").last
    await expect(on_bob).to_contain_text("Ship it?")

    # Bob picks 🎉 from the picker: both pages show it, counted, marked as Bob's on his.
    await on_bob.locator(".msg-react").click()
    await expect(bob.locator(".reaction-picker .pick")).to_have_count(8)
    await bob.locator('.reaction-picker .pick[data-emoji="🎉"]').click()
    await expect(bob.locator(".reaction-picker")).to_have_count(0)
    bob_party = on_bob.locator('.reaction[data-emoji="🎉"]')
    alice_party = on_alice.locator('.reaction[data-emoji="🎉"]')
    await expect(bob_party.locator(".count")).to_have_text("1")
    await expect(alice_party.locator(".count")).to_have_text("1")
    mine = "e => getComputedStyle(e).borderTopColor"
    assert await bob_party.evaluate(mine) != await alice_party.evaluate(mine)

    # Alice adds hers with one click on the reaction: 2; one more click takes it back.
    await alice_party.click()
    await expect(bob_party.locator(".count")).to_have_text("2")
    await expect(alice_party).to_have_attribute("title", f"bob{unique}, alice{unique}")
    assert await bob_party.evaluate(mine) == await alice_party.evaluate(mine)
    await alice_party.click()
    await expect(bob_party.locator(".count")).to_have_text("1")
    await bob_party.click()
    await expect(alice_party).to_have_count(0)
    await expect(bob_party).to_have_count(0)

    # Any other emoji is typed into the picker (the server says what one emoji is):
    # text is refused with a message and the picker stays open; a ZWJ sequence reacts.
    await on_bob.locator(".msg-react").click()
    other = bob.locator(".reaction-picker .pick-input")
    await other.fill("ok")
    await other.press("Enter")
    await expect(bob.locator("#chat-error")).to_contain_text("one emoji")
    await expect(bob.locator(".reaction-picker")).to_be_visible()
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    await other.fill(family)
    await other.press("Enter")
    await expect(bob.locator(".reaction-picker")).to_have_count(0)
    await expect(on_alice.locator(f'.reaction[data-emoji="{family}"] .count')).to_have_text("1")
    await on_bob.locator(f'.reaction[data-emoji="{family}"]').click()
    await expect(on_alice.locator(f'.reaction[data-emoji="{family}"]')).to_have_count(0)

    # Escape closes the picker without reacting.
    await on_alice.locator(".msg-react").click()
    await expect(alice.locator(".reaction-picker")).to_be_visible()
    await alice.keyboard.press("Escape")
    await expect(alice.locator(".reaction-picker")).to_have_count(0)
    await expect(on_alice.locator(".msg-react")).to_be_focused()
    # The refused reaction's 422 is the one console line.
    assert_clean(watch_a, watch_b, allowed=("status of 422",))
