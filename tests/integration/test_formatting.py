"""A formatted message looks the same everywhere: the live frame, the page, the
history it scrolls back to, a catch-up and the API's ``html`` (``text`` stays the
source), whether sent over the socket or the API, on SQLite and PostgreSQL; a row
saved before formatting (html NULL) is rendered from its text the same way."""

from __future__ import annotations

import json
import re
import time

from support import MESSAGE_RE, Browser, Inbox, Server, execute, query

SOURCE = (
    "**bold** and *it* `x<y` @{bob}\n> quoted\n\n- one\n- two\n\n"
    "```\n  keep   spaces\n```\nhttps://example.com/a?b=1 [bad](javascript:alert(1))"
)


def expected_html(bob: str) -> str:
    mention = f'<span class="mention" data-mention="{bob}">@{bob}</span>'
    link = (
        '<a href="https://example.com/a?b=1" target="_blank" '
        'rel="nofollow noopener noreferrer">https://example.com/a?b=1</a>'
    )
    return (
        f"<p><strong>bold</strong> and <em>it</em> <code>x&lt;y</code> {mention}</p>\n"
        "<blockquote>\n<p>quoted</p>\n</blockquote>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        f"<pre><code>  keep   spaces\n</code></pre>\n<p>{link} [bad](javascript:alert(1))</p>"
    )


def shown(html: str) -> dict[int, str]:
    """Message id -> the inside of its ``div.text``, for every message in ``html``."""
    found = re.findall(
        r'<article class="msg" id="message-(\d+)".*?<div class="text">(.*?)</div>\n</article>',
        html,
        re.S,
    )
    return {int(i): text for i, text in found}


async def test_a_formatted_message_renders_the_same_everywhere(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    text = SOURCE.format(bob=bob.username)
    async with await alice.socket(room) as wa, await bob.socket(room) as wb:
        live = Inbox(wb)
        await live.wait_for('id="members"')
        await wa.send(json.dumps({"message": text}))
        sent_live = await live.wait_for(MESSAGE_RE)
        posted = await bob.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
        assert posted.status_code == 201, posted.text
        sent_api = await live.wait_for(f'id="message-{posted.json()["id"]}"')
    frames = shown(sent_live) | shown(sent_api)
    html = expected_html(bob.username)
    assert list(frames.values()) == [html, html]

    api = (await bob.api("GET", f"/api/rooms/{room}/messages")).json()
    by_id = sorted((m["id"], m["text"], m["html"]) for m in api)  # the API: newest first
    assert by_id == [(i, text, html) for i in sorted(frames)]
    assert posted.json()["html"] == html and posted.json()["text"] == text

    page = (await bob.client.get(f"/rooms/{room}")).text
    assert {i: page_html for i, page_html in shown(page).items() if i in frames} == frames
    last = max(frames)
    second = await bob.api("POST", f"/api/rooms/{room}/messages", json={"text": "after"})
    older = (await bob.client.get(f"/rooms/{room}/messages?before={second.json()['seq']}")).text
    assert {i: h for i, h in shown(older).items() if i in frames} == frames
    async with await bob.socket(room, after=0) as caught:
        missed = await Inbox(caught).wait_for(f'id="message-{last}"')
    assert {i: h for i, h in shown(missed).items() if i in frames} == frames

    # Saved before formatting existed: no stored html, rendered from the text on read.
    assert await execute(server, "UPDATE messages SET html = NULL WHERE id = :id", id=last) == 1
    again = (await bob.api("GET", f"/api/rooms/{room}/messages")).json()
    assert [m["html"] for m in again if m["id"] in frames] == [html, html]
    older = (await bob.client.get(f"/rooms/{room}/messages?before={second.json()['seq']}")).text
    assert {i: h for i, h in shown(older).items() if i in frames} == frames


async def test_the_stored_html_is_what_the_writer_rendered(
    server: Server, make_user, room: int
) -> None:

    alice: Browser = await make_user()
    posted = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "*stored*"})
    rows = await query(
        server, "SELECT text, html FROM messages WHERE id = :id", id=posted.json()["id"]
    )
    assert rows == [("*stored*", "<p><em>stored</em></p>")]


async def unread_mentions(browser: Browser, room: int) -> int:
    rooms = (await browser.api("GET", "/api/rooms")).json()
    return next(r for r in rooms if r["id"] == room)["mentions"]


async def test_a_name_in_code_mentions_nobody(server: Server, make_user, room: int) -> None:
    """``@bob`` in a code span, a code block or a link's text neither notifies bob nor
    renders as a mention, sent or edited; outside them it does both."""
    alice, bob = await make_user(), await make_user()
    name = bob.username
    url = f"/api/rooms/{room}/messages"
    before = await unread_mentions(bob, room)
    for text in (f"`@{name}`", f"```\nping @{name}\n```", f"[@{name}](https://example.com/)"):
        sent = await alice.api("POST", url, json={"text": text})
        assert sent.status_code == 201, sent.text
        assert sent.json()["mentions"] == [] and "data-mention" not in sent.json()["html"]
    assert await unread_mentions(bob, room) == before
    # An edit that moves the name into code takes the mention back.
    plain = (await alice.api("POST", url, json={"text": f"hi @{name}"})).json()
    assert plain["mentions"] == [name] and f'data-mention="{name}"' in plain["html"]
    assert await unread_mentions(bob, room) == before + 1
    edited = await alice.api("PATCH", f"{url}/{plain['id']}", json={"text": f"hi `@{name}`"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["mentions"] == [] and "data-mention" not in edited.json()["html"]
    assert await unread_mentions(bob, room) == before
    rows = await query(
        server, "SELECT count(*) FROM message_mentions WHERE message_id = :m", m=plain["id"]
    )
    assert rows == [(0,)]


# Markdown link tricks (issue 14): none may become a script, a data: image or an
# attribute of its own; each is kept as sent and shown as text or a safe link.
LINK_TRICKS = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]: javascript:alert(1)\n\n[x]",
    "![](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](https://example.com/p.png)",
    "[x](data:text/html,<script>alert(1)</script>)",
    '<https://example.com/"onmouseover="alert(1)>',
    "<https://example.com/'onmouseover='alert(1)'>",
    'https://example.com/"><script>alert(1)</script>',
    '[x](https://example.com/" onclick="alert(1))',
    '[x](https://example.com/ "title" onclick="alert(1)")',
    "<javascript:alert(1)>",
    "mailto:a@example.com?subject=%22%3E%3Cscript%3E",
]
HREF_RE = re.compile(r'href="([^"]*)"')


async def test_markdown_link_tricks_stay_inert(server: Server, make_user, room: int) -> None:
    from test_hardening_input import assert_inert

    alice = await make_user()
    ids = []
    for text in LINK_TRICKS:
        sent = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
        assert sent.status_code == 201, (text, sent.text)
        message = sent.json()
        assert message["text"] == text
        html = message["html"]
        assert_inert(html, None)
        assert "<img" not in html and "<script" not in html, (text, html)
        assert all(re.match(r"(https?|mailto):", h) for h in HREF_RE.findall(html)), html
        ids.append(message["id"])
    page = (await alice.client.get(f"/rooms/{room}")).text
    assert_inert(page, None)
    assert set(ids) <= set(shown(page))


def deepest(pattern: str, limit: int = 4000) -> str:
    """``pattern`` ("open{}close") nested as deep as fits in one message."""
    open_, close = pattern.split("{}")
    depth = (limit - 1) // (len(open_) + len(close))
    return open_ * depth + "a" + close * depth


NESTING = {
    "emphasis": "*{}*",
    "strong": "**{}**",
    "mixed": "*_{}_*",
    "links": "[{}](http://x)",
    "brackets": "[{}]",
    "backticks": "`{}",
}


async def test_deep_nesting_is_refused_past_the_limit_and_inert_within_it(
    server: Server, make_user, room: int
) -> None:
    """Nesting 10,000 deep is over the 4,000-character limit (422, nothing saved);
    as deep as fits, and ">"/"- " 3,999 deep, it is saved, rendered quickly and
    inert, and the room's page still renders."""
    from test_hardening_input import assert_inert

    alice = await make_user()
    url = f"/api/rooms/{room}/messages"
    last = (await alice.api("GET", url)).json()
    for pattern in ("*{}*", "**{}**", "[{}](http://x)"):
        open_, close = pattern.split("{}")
        text = open_ * 10_000 + "a" + close * 10_000
        refused = await alice.api("POST", url, json={"text": text})
        assert refused.status_code == 422 and "4000" in refused.text
    assert (await alice.api("GET", url)).json() == last
    texts = [deepest(p) for p in NESTING.values()]
    texts += [">" * 3998 + " a", "- " * 1999 + "a", "1. " * 1333 + "a"]
    for text in texts:
        assert len(text) <= 4000
        started = time.monotonic()
        sent = await alice.api("POST", url, json={"text": text})
        assert sent.status_code == 201, sent.text
        assert time.monotonic() - started < 10  # seconds: a busy machine, not a hang
        assert_inert(sent.json()["html"], None)
        assert len(re.findall(r"<blockquote>|<ul>|<ol>|<li>", sent.json()["html"])) <= 50
    page = await alice.client.get(f"/rooms/{room}")
    assert page.status_code == 200
    assert_inert(page.text, None)


async def test_a_4000_character_code_block_is_kept_whole(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    line = "if a < b:  # <script>alert(1)</script>\n\tpass  \n"
    body = (line * 100)[: 4000 - 8] + "\n"
    text = f"```\n{body}```"
    assert len(text) == 4000
    sent = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": text})
    assert sent.status_code == 201, sent.text
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert sent.json()["html"] == f"<pre><code>{escaped}</code></pre>"
    page = (await alice.client.get(f"/rooms/{room}")).text
    assert shown(page)[sent.json()["id"]] == sent.json()["html"]
