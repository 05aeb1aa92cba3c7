"""Bot users from the CLI: a token printed once, refused on the page login, marked
as a bot where they appear, and bad webhook URLs refused — on a live server."""

from __future__ import annotations

import re

import httpx
import pytest
from support import MESSAGE_RE, Browser, Inbox, Server, query


def created(out: str) -> tuple[int, str]:
    """The bot's id and its token from ``talkroom createbot``'s output."""
    bot_id = int(re.search(r"\(id (\d+)\)", out).group(1))  # type: ignore[union-attr]
    token = re.search(r"^(tr_\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    return bot_id, token


async def test_a_bot_posts_with_its_token_and_is_marked_but_cannot_log_in(
    server: Server, make_user, room: int, unique: str
) -> None:
    out = server.cli("createbot", f"bot{unique}").stdout
    bot_id, token = created(out)
    assert out.count(token) == 1  # printed once
    rows = await query(server, "SELECT is_bot, password_hash FROM users WHERE id = :i", i=bot_id)
    assert rows == [(True, "")]
    assert f"{bot_id}\tbot{unique}\tbot" in server.cli("users").stdout

    alice = await make_user()
    async with await alice.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        async with httpx.AsyncClient(base_url=server.base) as bot:
            headers = {"Authorization": f"Bearer {token}"}
            posted = await bot.post(
                f"/api/rooms/{room}/messages", json={"text": "beep"}, headers=headers
            )
            assert posted.status_code == 201, posted.text
        frame = await inbox.wait_for(MESSAGE_RE)
    assert f'bot{unique}</span> <span class="bot-badge"' in frame
    page = await alice.client.get(f"/rooms/{room}")
    assert 'class="bot-badge"' in page.text  # and on a page load

    # Neither the token nor an empty password logs the bot in on the page.
    for password in (token, ""):
        stranger = Browser(server)
        response = await stranger.login(f"bot{unique}", password)
        await stranger.close()
        assert response.status_code in (400, 422), response.status_code
        assert "talkroom_session" not in str(stranger.client.cookies)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://user:pw@example.com/hook", "credentials"),
        ("ftp://example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://example.com/" + "a" * 10_000, "at most 2000"),
        ("https:///nohost", "needs a host"),
    ],
)
def test_createbot_refuses_a_bad_webhook_url(server: Server, unique: str, url: str, why: str):
    result = server.cli("createbot", f"bot{unique}", "--webhook", url, check=False)
    assert result.returncode == 1
    assert why in result.stderr and "Traceback" not in result.stderr
    assert f"bot{unique}" not in server.cli("users").stdout  # nothing was made


def test_createbot_with_a_webhook_prints_its_secret(server: Server, unique: str) -> None:
    out = server.cli("createbot", f"bot{unique}", "--webhook", "https://example.com/hook").stdout
    assert re.search(r"^whsec_\S+$", out, re.MULTILINE), out
    taken = server.cli("createbot", f"bot{unique}", check=False)
    assert taken.returncode == 1 and "taken" in taken.stderr


HTMX = {"HX-Request": "true"}
SHOWN_RE = re.compile(
    r"(API token|Webhook secret), shown only this once: <code hx-disable>(\S+)</code>"
)


async def test_an_admin_makes_a_bot_rotates_its_token_and_secret_on_the_page(
    server: Server, make_user, unique: str
) -> None:
    admin = await make_user()
    server.set_admin(admin.username)
    page = await admin.client.get("/admin")
    assert 'id="admin-bots"' in page.text
    await admin.fetch_csrf("/admin")
    name = f"pagebot{unique}"
    for bad, why in [
        ("http://u:p@example.com/", "credentials"),
        ("gopher://example.com/", "http:// or https://"),
        ("https://example.com/" + "a" * 10_000, "at most 2000"),
    ]:
        refused = await admin.api(
            "POST", "/admin/bots", data={"name": name, "webhook": bad}, headers=HTMX
        )
        assert refused.status_code == 200 and why in refused.text  # shown in the section
        assert f'data-bot="{name}"' not in refused.text
    made = await admin.api(
        "POST",
        "/admin/bots",
        data={"name": name, "webhook": "https://example.com/hook"},
        headers=HTMX,
    )
    assert made.text.startswith('<section id="admin-bots"')
    shown = dict(SHOWN_RE.findall(made.text))
    token, secret = shown["API token"], shown["Webhook secret"]
    assert f'data-bot="{name}"' in made.text
    again = await admin.client.get("/admin")
    assert token not in again.text and secret not in again.text  # shown once
    async with httpx.AsyncClient(base_url=server.base) as client:
        me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == name
        bot_id = me.json()["id"]
        rotated = await admin.api("POST", f"/admin/bots/{bot_id}/token", headers=HTMX)
        new_token = dict(SHOWN_RE.findall(rotated.text))["API token"]
        old = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert old.status_code == 401
        new = await client.get("/api/me", headers={"Authorization": f"Bearer {new_token}"})
        assert new.status_code == 200
    rotated = await admin.api("POST", f"/admin/bots/{bot_id}/secret", headers=HTMX)
    new_secret = dict(SHOWN_RE.findall(rotated.text))["Webhook secret"]
    assert new_secret != secret
    stored = await query(server, "SELECT webhook_secret FROM users WHERE id = :i", i=bot_id)
    assert stored == [(new_secret,)]
    # Not a bot: refused, shown in the section.
    me_id = (await admin.client.get("/api/me")).json()["id"]
    other = await admin.api("POST", f"/admin/bots/{me_id}/token", headers=HTMX)
    assert "There is no such bot." in other.text


async def test_the_api_makes_bots_for_admins_and_refuses_bad_webhook_urls(
    server: Server, make_user, unique: str
) -> None:
    admin, bob = await make_user(), await make_user()
    server.set_admin(admin.username)
    for browser in (admin, bob):
        await browser.fetch_csrf("/")
    name = f"apibot{unique}"
    for bad in (
        "http://user:pw@example.com/hook",
        "ftp://example.com/hook",
        "https://example.com/" + "a" * 10_000,
    ):
        refused = await admin.api("POST", "/api/bots", json={"username": name, "webhook_url": bad})
        assert refused.status_code == 422, refused.text
    not_admin = await bob.api("POST", "/api/bots", json={"username": name})
    assert not_admin.status_code == 403
    made = await admin.api(
        "POST", "/api/bots", json={"username": name, "webhook_url": "https://example.com:8443/h"}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["token"].startswith("tr_") and body["webhook_secret"].startswith("whsec_")
    taken = await admin.api("POST", "/api/bots", json={"username": name})
    assert taken.status_code == 409 and taken.json() == {"detail": "That username is taken."}
