"""Display names and avatars over a real server: set on the account page (and the
API), shown inert beside the username in messages, who is here and the DMs; hostile
names cleaned or refused, hostile uploads refused with nothing stored."""

from __future__ import annotations

import asyncio
import io
import re
import struct
import unicodedata
import zlib

import httpx
import pytest
from PIL import Image
from support import Browser, Inbox, Server, query
from test_hardening_input import VECTORS, assert_inert, decoded, form_body

AVATAR_SRC = re.compile(r'<img class="avatar" src="(/avatars/(\d+)\?v=([0-9a-f]{16}))"')
# What the cleaning makes of the vectors that hold controls, format characters or
# separators (the rest are kept as they are, trimmed and NFC).
CLEANED = {
    "rtl-override": "abcgnp.exe def",
    "zero-width": "ab\u200cc\u200dde",  # ZWNJ and ZWJ stay: scripts and emoji need them
    "nul-byte": "beforeafter",
    "control-chars": "bell escape[31m",
    "line-separator": "one two",
    "lone-surrogate": decoded(VECTORS["lone-surrogate"]),  # as a form field decodes it
}


def cleaned(name: str) -> str:
    return CLEANED.get(name, unicodedata.normalize("NFC", VECTORS[name].strip()))


async def set_name(browser: Browser, name: str) -> httpx.Response:
    await browser.fetch_csrf("/account")
    return await browser.client.post(
        "/account/profile", **form_body({"display_name": name, "csrf_token": browser.csrf})
    )


async def upload(
    browser: Browser, data: bytes, name: str = "me.png", content_type: str = "image/png"
) -> httpx.Response:
    await browser.fetch_csrf("/account")
    return await browser.client.post(
        "/account/avatar",
        data={"csrf_token": browser.csrf},
        files={"avatar": (name, data, content_type)},
    )


def png(width: int = 300, height: int = 200, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def pixel_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit PNG header claiming width x height: a few hundred bytes that
    would decode to gigabytes (the IDAT holds one row; nothing should get that far)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + width // 8), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


async def me(browser: Browser) -> dict:
    return (await browser.api("GET", "/api/me")).json()


async def stored_avatars(server: Server, user_id: int) -> list[tuple]:
    return await query(
        server,
        "SELECT u.avatar_key, count(a.user_id) FROM users u"
        " LEFT JOIN user_avatars a ON a.user_id = u.id WHERE u.id = :id GROUP BY u.avatar_key",
        id=user_id,
    )


@pytest.mark.parametrize("vector", list(VECTORS))
async def test_a_hostile_display_name_is_cleaned_and_shown_inert(
    server: Server, make_user, room: int, vector: str
) -> None:
    alice = await make_user()
    changed = await set_name(alice, VECTORS[vector])
    assert changed.status_code == 303, changed.text
    expected = cleaned(vector)
    assert (await me(alice))["display_name"] == expected
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in expected)
    assert not set(expected) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert_inert((await alice.client.get("/account")).text, expected)
    # In a message, live and in the page.
    inbox = Inbox(await alice.socket(room))
    await inbox.wait_for('id="members"')
    sent = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"hi {vector}"})
    assert sent.status_code == 201 and sent.json()["author_display_name"] == expected
    frame = await inbox.wait_for(f"hi {vector}")
    assert_inert(frame, expected)
    page = (await alice.client.get(f"/rooms/{room}")).text
    assert_inert(page, expected)
    await inbox.ws.close()


async def test_a_display_name_too_long_is_refused_and_nothing_changes(
    server: Server, make_user
) -> None:
    alice = await make_user()
    assert (await set_name(alice, "Alice Liddell")).status_code == 303
    refused = await set_name(alice, "x" * 65)
    assert refused.status_code == 400 and "at most 64 characters" in refused.text
    assert (await me(alice))["display_name"] == "Alice Liddell"
    # 64 after cleaning is fine: the spaces and controls around it do not count.
    assert (await set_name(alice, "  " + "\u202e" * 10 + "y" * 64 + "\x00 ")).status_code == 303
    assert (await me(alice))["display_name"] == "y" * 64
    api = await alice.api("PATCH", "/api/me", json={"display_name": "z" * 65})
    assert api.status_code == 422 and "at most 64" in str(api.json()["detail"])
    # Empty clears it: the username alone shows again.
    cleared = await alice.api("PATCH", "/api/me", json={"display_name": " \u200b "})
    assert cleared.status_code == 200 and cleared.json()["display_name"] is None


async def test_a_new_name_shows_in_later_messages_pages_and_who_is_here(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    watching = Inbox(await bob.socket(room))
    await watching.wait_for('id="members"')
    first = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "before"})
    await watching.wait_for("before")
    assert (await bob.client.get(f"/rooms/{room}")).status_code == 200  # the window cached
    # The socket alice opens now, and the name she sets after it opened.
    hers = Inbox(await alice.socket(room))
    await hers.wait_for('id="members"')
    assert (await set_name(alice, "Alice Liddell")).status_code == 303
    # A page load shows it on her earlier message (the cached window noticed: no
    # change to the room moved its last_seq).
    page = (await bob.client.get(f"/rooms/{room}")).text
    earlier = page.split(f'id="message-{first.json()["id"]}"', 1)[1].split("</article>", 1)[0]
    assert '<span class="display-name">Alice Liddell</span>' in earlier
    await hers.ws.send('{"message": "after"}')
    frame = await watching.wait_for("after")
    assert '<span class="display-name">Alice Liddell</span>' in frame
    # Who is here, for the next one to join.
    carol = await make_user()
    joined = await Inbox(await carol.socket(room)).wait_for('id="members"')
    assert "Alice Liddell" in joined
    await hers.ws.close()
    await watching.ws.close()


async def test_the_dm_sidebar_shows_the_other_persons_face(server: Server, make_user) -> None:
    alice, bob = await make_user(), await make_user()
    assert (await set_name(bob, VECTORS["script"])).status_code == 303
    assert (await upload(bob, png())).status_code == 303
    made = await alice.api("POST", "/api/direct", json={"usernames": [bob.username]})
    assert made.status_code in (200, 201), made.text
    page = (await alice.client.get("/")).text
    sidebar = page.split('class="rooms directs"', 1)[1].split("</ul>", 1)[0]
    assert_inert(sidebar, VECTORS["script"])
    assert AVATAR_SRC.search(sidebar)


async def test_an_avatar_is_made_served_to_users_only_and_versioned(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    alice_id = (await me(alice))["id"]
    assert (await me(alice))["avatar_url"] is None
    # Without one: initials in a colour, no image.
    sent = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "no face yet"})
    assert sent.status_code == 201
    page = (await bob.client.get(f"/rooms/{room}")).text
    article = page.split(f'id="message-{sent.json()["id"]}"', 1)[1].split("</article>", 1)[0]
    assert re.search(
        r'<span class="avatar initials hue-\d+" aria-hidden="true">[A-Z]{1,2}</span>', article
    )

    # A JPEG with EXIF (a camera name, a rotation): stored as our own small WebP.
    photo = Image.new("RGB", (400, 200), (0, 0, 255))
    exif = photo.getexif()
    exif[0x010F], exif[0x0112] = "SecretCam", 6
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", exif=exif)
    assert (await upload(alice, jpeg.getvalue(), "photo.jpg", "image/jpeg")).status_code == 303
    url = (await me(alice))["avatar_url"]
    assert url and url.startswith(f"/avatars/{alice_id}?v=")
    served = await bob.client.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"].startswith("private")
    assert b"SecretCam" not in served.content and b"Exif" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (128, 128)
    # Only for logged-in users; an unknown one is a 404.
    async with httpx.AsyncClient(base_url=server.base) as anonymous:
        assert (await anonymous.get(url)).status_code == 401
    assert (await bob.client.get("/avatars/999999")).status_code == 404
    assert (await bob.client.get("/avatars/99999999999")).status_code == 404

    # Shown in her next message, live to others, with that URL.
    watching = Inbox(await bob.socket(room))
    await watching.wait_for('id="members"')
    await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "with a face"})
    frame = await watching.wait_for("with a face")
    assert AVATAR_SRC.search(frame).group(1) == url  # type: ignore[union-attr]

    # A new avatar is a new URL; the old one is not cached for good any more.
    assert (await upload(alice, png(colour=(0, 200, 0)))).status_code == 303
    new_url = (await me(alice))["avatar_url"]
    assert new_url != url
    assert (await bob.client.get(new_url)).headers["cache-control"] == (
        "private, max-age=31536000, immutable"
    )
    assert (await bob.client.get(url)).headers["cache-control"] == "private, no-cache"
    assert await stored_avatars(server, alice_id) == [(new_url.rsplit("=", 1)[1], 1)]

    # Removed: initials again, nothing stored.
    await alice.fetch_csrf("/account")
    gone = await alice.client.post("/account/avatar/remove", data={"csrf_token": alice.csrf})
    assert gone.status_code == 303
    assert (await me(alice))["avatar_url"] is None
    assert (await bob.client.get(new_url)).status_code == 404
    assert await stored_avatars(server, alice_id) == [(None, 0)]
    await watching.ws.close()


HOSTILE_UPLOADS = {
    "html": (b"<!doctype html><html><script>alert(1)</script></html>", "x.html", "text/html"),
    "svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
        b"<script>alert(2)</script></svg>",
        "x.svg",
        "image/svg+xml",
    ),
    "png-that-is-html": (b"<html><body onload=alert(1)>hi</body></html>", "x.png", "image/png"),
    "truncated-png": (png()[:80], "cut.png", "image/png"),
    "pixel-bomb": (pixel_bomb(), "bomb.png", "image/png"),
    "mid-size-bomb": (pixel_bomb(6_000, 6_000), "big.png", "image/png"),
    "empty": (b"", "empty.png", "image/png"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_UPLOADS))
async def test_a_hostile_upload_is_refused_and_nothing_is_stored(
    server: Server, make_user, kind: str
) -> None:
    alice = await make_user()
    alice_id = (await me(alice))["id"]
    assert (await upload(alice, png())).status_code == 303
    before = await stored_avatars(server, alice_id)
    data, name, content_type = HOSTILE_UPLOADS[kind]
    refused = await upload(alice, data, name, content_type)
    assert refused.status_code == 400, refused.text
    assert "form-error" in refused.text
    assert await stored_avatars(server, alice_id) == before
    assert "<script>alert" not in refused.text


async def test_an_upload_over_the_limit_is_413_before_it_is_read(server: Server, make_user) -> None:
    alice = await make_user()
    alice_id = (await me(alice))["id"]
    big = png() + b"\0" * (2 * 2**20)  # a valid PNG, then padding past 2 MB
    refused = await upload(alice, big)
    assert refused.status_code == 413 and "at most 2 MB" in refused.text
    assert await stored_avatars(server, alice_id) == [(None, 0)]

    # The same without a Content-Length (chunked): cut off once it passes the limit.
    await alice.fetch_csrf("/account")
    boundary = "faces-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f'{alice.csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name="avatar"; '
        f'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()

    async def chunks():  # noqa: ANN202
        yield head
        for _ in range(40):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    chunked = await alice.client.post(
        "/account/avatar",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert chunked.status_code == 413
    assert await stored_avatars(server, alice_id) == [(None, 0)]
    assert (await me(alice))["avatar_url"] is None


async def test_a_huge_content_length_is_answered_413_without_waiting_for_the_body(
    server: Server, make_user
) -> None:
    """Refused from its headers alone: the server reads none of a 1 GB upload (here
    never sent) before answering, so neither the CSRF check's form parsing nor
    Starlette's temporary files ever see it."""
    alice = await make_user()
    await alice.fetch_csrf("/account")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        (
            "POST /account/avatar HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            f"Cookie: {alice.cookie_header}\r\n"
            f"X-CSRF-Token: {alice.csrf}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {10**9}\r\n\r\n--x\r\n"
        ).encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), timeout=10)
    assert status.split()[1] == b"413", status
    writer.close()
    assert (await me(alice))["avatar_url"] is None
