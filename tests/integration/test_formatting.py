"""A formatted message looks the same everywhere: the live frame, the page, the
history it scrolls back to, a catch-up and the API's ``html`` (``text`` stays the
source), whether sent over the socket or the API, on SQLite and PostgreSQL; a row
saved before formatting (html NULL) is rendered from its text the same way."""

from __future__ import annotations

import json
import re

from support import MESSAGE_RE, Browser, Inbox, Server, execute

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
    from support import query

    alice: Browser = await make_user()
    posted = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "*stored*"})
    rows = await query(
        server, "SELECT text, html FROM messages WHERE id = :id", id=posted.json()["id"]
    )
    assert rows == [("*stored*", "<p><em>stored</em></p>")]
