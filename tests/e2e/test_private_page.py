"""A private room seen by its member and not by another user; a DM started from the
page's "new message" picker and seen live by the other person."""

from __future__ import annotations

from e2e_support import assert_clean, new_page
from playwright.async_api import expect
from support import Browser, Server


async def test_a_private_room_and_a_direct_message_in_the_page(
    browser, server: Server, unique: str
) -> None:
    alice_name, bob_name = f"alice_{unique}", f"bob_{unique}"
    alice, watch1 = await new_page(browser, server, alice_name)
    bob, watch2 = await new_page(browser, server, bob_name)
    owner = Browser(server)
    try:
        await owner.register(f"owner_{unique}")
        server.set_admin(owner.username)
        made = await owner.api(
            "POST", "/api/rooms", json={"name": f"hidden-{unique}", "kind": "private"}
        )
        room = made.json()["id"]
        people = (await owner.api("GET", "/api/users")).json()
        alice_id = next(u["id"] for u in people if u["username"] == alice_name)
        assert (await owner.api("PUT", f"/api/rooms/{room}/members/{alice_id}")).status_code == 204
    finally:
        await owner.close()

    # The member sees it in her sidebar (live: she was added after loading) and opens it.
    link = alice.locator(f'#rooms [data-room-link="{room}"]')
    await expect(link).to_contain_text(f"hidden-{unique}", timeout=20_000)
    await link.click()
    await expect(alice.locator("#room-title")).to_have_text(f"hidden-{unique}")
    await expect(alice.locator(".room-members")).to_contain_text(alice_name)
    # The other user: not in the list, and the URL is a plain Not Found.
    await bob.reload()
    await expect(bob.locator("#rooms")).not_to_contain_text(f"hidden-{unique}")
    response = await bob.goto(f"/rooms/{room}")
    assert response is not None and response.status == 404
    await bob.goto("/")

    # Bob starts a DM with alice from the picker, with autocomplete.
    picker = bob.locator("#direct-to")
    await picker.press_sequentially(alice_name[:7])
    await expect(bob.locator(f'#direct-people option[value="{alice_name}"]')).to_have_count(1)
    await picker.fill(alice_name)
    await bob.locator(".new-direct button[type=submit]").click()
    await expect(bob.locator("#room-title")).to_have_text(alice_name)
    await bob.locator("#message-input").fill("hello alice, just you")
    await bob.locator("#message-input").press("Enter")
    # Alice's sidebar gets the DM live, by bob's name; she opens it and reads.
    dm = alice.locator(".directs a", has_text=bob_name)
    await expect(dm).to_be_visible(timeout=20_000)
    await dm.click()
    await expect(alice.locator("#room-title")).to_have_text(bob_name)
    await expect(alice.locator("#messages")).to_contain_text("hello alice, just you")
    assert_clean(watch1, watch2, allowed=("404",))
