"""Hostile input: one corpus against usernames, room names, descriptions and messages,
over the forms, the API and the WebSocket.

Each input is either kept exactly (trimmed) and shown inert, or refused with a clear
error; never a 500, never half-stored. "Inert" is checked on the HTML a browser gets:
the text is a text node (so it was escaped, not parsed), it sits under ``hx-disable``,
and the page holds no event handler, inline script, ``javascript:`` URL, duplicate id,
or htmx attribute inside user content.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from scale_support import user_on
from support import MESSAGE_RE, PASSWORD, Browser, Inbox, Server
from websockets.exceptions import ConnectionClosed

VECTORS: dict[str, str] = {
    "script": "<script>alert(1)</script>",
    "img-onerror": '<img src=x onerror="alert(1)">',
    "svg-onload": "<svg/onload=alert(1)>",
    "attribute-breakout": '" onmouseover="alert(1)" x="',
    "single-quote-breakout": "' autofocus onfocus='alert(1)",
    "javascript-link": '<a href="javascript:alert(1)">x</a> javascript:alert(1)',
    "url-breakout": 'https://example.com/"><script>alert(1)</script>',
    "url-with-quote": "https://example.com/?q='onmouseover=alert(1)//",
    "hx-attributes": '<div hx-get="/logout" hx-trigger="load">x</div>',
    "data-hx-attributes": '<b data-hx-post="/api/rooms" data-hx-trigger="load">x</b>',
    "oob-swap": '<div id="messages" hx-swap-oob="innerHTML">gone</div>',
    "id-class-injection": '<p id="chat-error" class="chat-error">fake</p>',
    "template-syntax": "{{ 7*7 }} {% if 1 %}x{% endif %} ${7*7}",
    "entities": "&lt;b&gt; &amp;amp; &#60;i&#62;",
    "rtl-override": "abc\u202egnp.exe\u202c def",
    "zero-width": "a\u200bb\u200cc\u200dd\ufeffe",
    "combining-marks": "Z\u0351\u0352\u0353a\u0300\u0301\u0302" * 4,
    "emoji": "\U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308 x",
    "nul-byte": "before\x00after",
    "control-chars": "bell\x07 escape\x1b[31m",
    "line-separator": "one\u2028two",
    "lone-surrogate": "half \ud800 of a pair",
}
TRIED = len(VECTORS)
ALLOWED_TOP_LEVEL = re.compile(r"^(messages|members|chat-error|online-\d+)$")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    text: list[str] = field(default_factory=list)

    @property
    def disabled(self) -> bool:
        """hx-disable on this element or an ancestor: htmx ignores everything inside."""
        node: Element | None = self
        while node is not None:
            if "hx-disable" in node.attrs:
                return True
            node = node.parent
        return False

    @property
    def in_body(self) -> bool:
        node: Element | None = self
        while node is not None:
            if node.tag == "head":
                return False
            node = node.parent
        return True


class Tree(HTMLParser):
    """Every element of a document or fragment, with its ancestors and its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.top: list[Element] = []
        self._stack: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self._stack[-1] if self._stack else None
        element = Element(tag, {k: v or "" for k, v in attrs}, parent)
        self.elements.append(element)
        if parent is None:
            self.top.append(element)
        if tag not in VOID:
            self._stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i].tag == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._stack:
            element.text.append(data)


def assert_inert(html: str, text: str | None) -> None:
    """Nothing in ``html`` runs or triggers a request; ``text``, when given, appears
    as text (escaped, not parsed) and only under hx-disable."""
    tree = Tree(html)
    ids = [e.attrs["id"] for e in tree.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids)), f"duplicate ids: {ids}"
    for element in tree.elements:
        for name, value in element.attrs.items():
            assert not name.startswith("on"), (element.tag, name)
            if name in ("href", "src", "action", "formaction"):
                assert not value.strip().lower().startswith("javascript:"), value
            if element.disabled and name != "hx-disable":
                assert not name.startswith(("hx-", "data-hx-", "ws-")), (element.tag, name)
        if element.tag == "script":
            assert element.attrs.get("src", "").startswith("/static/"), element.attrs
            assert not "".join(element.text).strip()
    if text is None:
        return
    holders = [e for e in tree.elements if e.in_body and text in "".join(e.text)]
    assert holders, f"{text!r} is not shown as text"
    deepest = [e for e in holders if not any(h.parent is e for h in holders)]
    for element in deepest:
        assert element.disabled, f"{text!r} in <{element.tag} {element.attrs}> lacks hx-disable"


def expected_text(vector: str) -> str:
    return vector.strip()


# A message is Markdown (app.markup): where a vector is also formatting, the page
# shows the formatted text, still as text nodes only (here "*7 }} … ${7*" is italic).
FORMATTED = {"template-syntax": "{{ 77 }} {% if 1 %}x{% endif %} ${77}"}


def shown_message(vector: str) -> str:
    names = [name for name, v in VECTORS.items() if v == vector]
    return FORMATTED.get(names[0], expected_text(vector)) if names else expected_text(vector)


def decoded(text: str) -> str:
    """What a form field holds on the server: undecodable bytes become U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def form_body(data: dict[str, str]) -> dict[str, object]:
    """A form post, percent-encoded as given: a lone surrogate arrives as the bytes a
    careless client would send (browsers would have replaced it)."""
    body = urlencode(data, encoding="utf-8", errors="surrogatepass")
    return {"content": body, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def ws_frame(text: str) -> str:
    return json.dumps({"message": text})


@pytest.fixture(scope="module")
async def admin(server: Server) -> AsyncIterator[Browser]:
    browser = await user_on(server, f"hostile_admin_{server.port}")
    server.set_admin(browser.username)
    await browser.fetch_csrf("/account")
    yield browser
    await browser.close()


@pytest.fixture(scope="module")
async def hostile_room(admin: Browser) -> int:
    made = await admin.api("POST", "/api/rooms", json={"name": f"hostile-{admin.server.port}"})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def latest(browser: Browser, room: int) -> dict | None:
    page = (await browser.api("GET", f"/api/rooms/{room}/messages", params={"limit": 1})).json()
    return page[0] if page else None


async def assert_kept_or_refused(
    browser: Browser, room: int, before: dict | None, vector: str, refused: bool
) -> None:
    """Kept exactly and shown inert on the page, or refused with nothing saved."""
    after = await latest(browser, room)
    if refused:
        assert after == before  # nothing saved, not even part of it
        return
    assert after is not None and after["text"] == expected_text(vector)
    assert after["seq"] == (before["seq"] if before else 0) + 1
    page = await browser.client.get(f"/rooms/{room}")
    assert page.status_code == 200
    assert_inert(page.text, shown_message(vector))


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_message_over_the_websocket(
    server: Server, admin: Browser, hostile_room: int, name: str
) -> None:
    vector = VECTORS[name]
    before = await latest(admin, hostile_room)
    async with await admin.socket(hostile_room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        await ws.send(ws_frame(vector))
        reply = await inbox.wait_for(re.compile(r'id="chat-error"|' + MESSAGE_RE.pattern))
    tree = Tree(reply)
    refused = any(e.attrs.get("id") == "chat-error" for e in tree.top)
    assert all(ALLOWED_TOP_LEVEL.match(e.attrs.get("id", "")) for e in tree.top), reply
    assert_inert(reply, None if refused else shown_message(vector))
    if refused:
        assert re.search(r"cannot|not JSON|must", reply), reply
    await assert_kept_or_refused(admin, hostile_room, before, vector, refused)


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_message_over_the_api(
    server: Server, admin: Browser, hostile_room: int, name: str
) -> None:
    vector = VECTORS[name]
    before = await latest(admin, hostile_room)
    # Sent as JSON with \\u escapes, so a lone surrogate reaches the server as such.
    body = json.dumps({"text": vector})
    response = await admin.api(
        "POST",
        f"/api/rooms/{hostile_room}/messages",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (201, 422), (response.status_code, response.text)
    if response.status_code == 422:
        assert response.json()["detail"]
    await assert_kept_or_refused(
        admin, hostile_room, before, vector, refused=response.status_code == 422
    )


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_edit_over_the_api(
    server: Server, admin: Browser, hostile_room: int, name: str
) -> None:
    """Each vector as an edit (issue 12): kept exactly and inert in the frame that
    swaps the message in place and in the page, or refused with the message as it was."""
    vector = VECTORS[name]
    posted = await admin.api(
        "POST", f"/api/rooms/{hostile_room}/messages", json={"text": "to be edited"}
    )
    assert posted.status_code == 201, posted.text
    message = posted.json()
    url = f"/api/rooms/{hostile_room}/messages/{message['id']}"
    async with await admin.socket(hostile_room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        response = await admin.api(
            "PATCH",
            url,
            content=json.dumps({"text": vector}),  # \u escapes: a lone surrogate as such
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code in (200, 422), (response.status_code, response.text)
        if response.status_code == 200:
            frame = await inbox.wait_for(f'id="message-{message["id"]}"')
            tree = Tree(frame)
            assert [e.attrs.get("id") for e in tree.top] == [f"message-{message['id']}"]
            assert_inert(frame, shown_message(vector))
    after = await latest(admin, hostile_room)
    assert after is not None and after["id"] == message["id"]
    if response.status_code == 422:
        assert response.json()["detail"]
        assert (after["text"], after["rev"], after["edited_at"]) == (
            "to be edited",
            message["seq"],
            None,
        )
        return
    assert after["text"] == expected_text(vector) and after["edited_at"] is not None
    page = await admin.client.get(f"/rooms/{hostile_room}")
    assert page.status_code == 200
    assert_inert(page.text, shown_message(vector))


def formatted(vector: str) -> str:
    """``vector`` in every construct of the Markdown subset, one after the other."""
    v = vector.strip()
    return f"**{v}**\n\n*{v}*\n\n> {v}\n\n- {v}\n1. {v}\n\n`{v}`\n\n```\n{v}\n```\n\n[{v}](https://example.com/)"


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_message_inside_formatting(
    server: Server, admin: Browser, hostile_room: int, name: str
) -> None:
    """Inside bold, italic, a quote, lists, code and a link's text, each vector stays
    inert; in the code block it is shown exactly as typed."""
    text = formatted(VECTORS[name])
    body = json.dumps({"text": text})
    response = await admin.api(
        "POST",
        f"/api/rooms/{hostile_room}/messages",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (201, 422), (response.status_code, response.text)
    if response.status_code == 422:
        return  # refused as a plain message too (a NUL)
    message = response.json()
    assert message["text"] == text
    assert_inert(message["html"], None)
    page = await admin.client.get(f"/rooms/{hostile_room}")
    assert page.status_code == 200
    element = re.search(
        rf'<article class="msg" id="message-{message["id"]}".*?</article>', page.text, re.S
    )
    assert element is not None and message["html"] in element.group()
    assert_inert(page.text, expected_text(VECTORS[name]).replace("\ud800", "\ufffd"))
    code = [e for e in Tree(element.group()).elements if e.tag == "pre"]
    assert (
        len(code) == 1
        and "".join(code[0].text) == expected_text(VECTORS[name]).replace("\ud800", "\ufffd") + "\n"
    )


async def room_by_id(browser: Browser, room_id: int) -> dict:
    return (await browser.api("GET", f"/api/rooms/{room_id}")).json()


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_room_name_and_description_over_the_api(
    server: Server, admin: Browser, name: str
) -> None:
    vector = VECTORS[name]
    rooms_before = (await admin.api("GET", "/api/rooms")).json()
    body = json.dumps({"name": f"{vector[:50]} {server.port}", "description": vector})
    response = await admin.api(
        "POST", "/api/rooms", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (201, 409, 422), (response.status_code, response.text)
    if response.status_code != 201:
        assert response.json()["detail"]
        assert (await admin.api("GET", "/api/rooms")).json() == rooms_before
        return
    room = response.json()
    assert room["name"] == f"{vector[:50]} {server.port}".strip()
    assert room["description"] == expected_text(vector)
    for path in (f"/rooms/{room['id']}", "/", "/admin"):
        page = await admin.client.get(path)
        assert page.status_code == 200
        assert_inert(page.text, room["name"] if path != "/admin" else None)
    assert_inert((await admin.client.get(f"/rooms/{room['id']}")).text, room["description"])


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_room_over_the_admin_form(server: Server, admin: Browser, name: str) -> None:
    vector = VECTORS[name]
    rooms_before = (await admin.api("GET", "/api/rooms")).json()
    room_name = f"{vector[:40]} form {server.port}"
    response = await admin.client.post(
        "/admin/rooms",
        **form_body({"name": room_name, "description": vector, "csrf_token": admin.csrf}),  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text  # htmx swaps 2xx: errors are shown
    assert_inert(response.text, None)
    rooms_after = (await admin.api("GET", "/api/rooms")).json()
    if "form-error" in response.text:
        assert rooms_after == rooms_before
        return
    made = [r for r in rooms_after if r not in rooms_before]
    assert [(r["name"], r["description"]) for r in made] == [
        (decoded(room_name).strip(), decoded(expected_text(vector)))
    ]


@pytest.mark.parametrize("name", VECTORS)
async def test_hostile_username_over_the_forms(server: Server, name: str) -> None:
    """Usernames allow only letters, digits, _ . and -: every vector is refused, and
    the form shown again holds it only as an attribute value."""
    vector = VECTORS[name]
    browser = Browser(server)
    # An address of its own (uvicorn trusts X-Forwarded-For from loopback): these
    # failed logins must not use up the loopback address's budget other tests share.
    browser.client.headers["X-Forwarded-For"] = f"198.51.100.{list(VECTORS).index(name) + 1}"
    for form in ("register", "login"):
        await browser.fetch_csrf(f"/{form}")
        data = {"username": vector, "password": PASSWORD, "csrf_token": browser.csrf}
        response = await browser.client.post(f"/{form}", **form_body(data))  # type: ignore[arg-type]
        assert response.status_code == 400, (form, response.status_code)
        assert_inert(response.text, None)
        field_values = [
            e.attrs.get("value")
            for e in Tree(response.text).elements
            if e.attrs.get("id") == "username"
        ]
        assert field_values in ([decoded(vector)], [decoded(vector).strip()]), field_values
    assert (await browser.client.get("/api/me")).status_code == 401
    await browser.close()


async def test_invalid_utf8_in_a_text_frame_closes_the_socket_and_saves_nothing(
    server: Server, admin: Browser, hostile_room: int
) -> None:
    before = await latest(admin, hostile_room)
    async with await admin.socket(hostile_room) as ws:
        await Inbox(ws).wait_for('id="members"')
        await ws.send(b'{"message": "\xff\xfe broken \xc3\x28"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert await latest(admin, hostile_room) == before


async def test_deeply_nested_json_is_refused_everywhere(
    server: Server, admin: Browser, hostile_room: int
) -> None:
    before = await latest(admin, hostile_room)
    nested = "[" * 30_000 + "]" * 30_000
    as_message = '{"message": ' + "[" * 30_000 + "]" * 30_000 + "}"
    async with await admin.socket(hostile_room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        for frame in (nested, as_message):
            await ws.send(frame)
            assert "chat-error" in await inbox.wait_for('id="chat-error"')
    for body in (nested, '{"text": ' + nested + "}"):
        response = await admin.api(
            "POST",
            f"/api/rooms/{hostile_room}/messages",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.status_code
    assert await latest(admin, hostile_room) == before


def frame_of_size(size: int) -> str:
    """A frame of exactly ``size`` bytes holding one long message."""
    shell = len(ws_frame(""))
    return ws_frame("x" * (size - shell))


async def test_the_4000_character_and_64_kib_boundaries(
    server: Server, admin: Browser, hostile_room: int
) -> None:
    emoji = "\U0001f600"  # four bytes in UTF-8, one character
    async with await admin.socket(hostile_room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for('id="members"')
        await ws.send(ws_frame(emoji * 4000))
        await inbox.wait_for(MESSAGE_RE)
        await ws.send(ws_frame(emoji * 4001))
        assert "at most 4000" in await inbox.wait_for('id="chat-error"')
        assert len(frame_of_size(65536).encode()) == 65536
        await ws.send(frame_of_size(65536))  # at the limit: read, refused as too long
        assert "at most 4000" in await inbox.wait_for('id="chat-error"')
        await ws.send(frame_of_size(65537))  # over it: closed
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert (await latest(admin, hostile_room))["text"] == emoji * 4000  # type: ignore[index]
    url = f"/api/rooms/{hostile_room}/messages"
    assert (await admin.api("POST", url, json={"text": "y" * 4000})).status_code == 201
    for text in ("y" * 4001, "y" * 70_000):
        refused = await admin.api("POST", url, json={"text": text})
        assert refused.status_code == 422 and refused.json()["detail"]
    assert (await latest(admin, hostile_room))["text"] == "y" * 4000  # type: ignore[index]
