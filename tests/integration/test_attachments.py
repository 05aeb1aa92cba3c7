"""Attachments over a real server, on SQLite and PostgreSQL: hostile files stay
inert, limits hold while the body streams, only the room's readers get a file,
and a delete or a restart does what it should to the files on disk."""

from __future__ import annotations

import asyncio
import io
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image
from support import Browser, Inbox, Server, postgres_url, running_server
from test_api import user_id

LIMIT_MB = 1
LIMIT = LIMIT_MB * 1024 * 1024
BOUNDARY = "talkroomTestBoundary7MA4YWxk"


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own: a 1 MB upload limit, the real rate limit."""
    settings = {"max_upload_mb": str(LIMIT_MB), "message_rate": "5", "message_burst": "10"}
    if request.param == "postgres":
        settings["database_url"] = postgres_url("talkroom_attachments")
    with running_server(tmp_path_factory.mktemp(f"files-{request.param}"), **settings) as srv:
        yield srv


@pytest.fixture
async def room(server: Server, make_user, unique: str) -> int:
    """A public room, made through the API (the CLI costs a process start)."""
    maker = await make_user()
    made = await maker.api("POST", "/api/rooms", json={"name": f"files-{unique}"})
    assert made.status_code == 201, made.text
    return made.json()["id"]


# Files -------------------------------------------------------------------------


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def pixel_bomb(side: int = 30_000) -> bytes:
    """A valid PNG header for side x side 1-bit grey pixels and a zlib stream of
    zeros: ~110 KB on disk, 900 million pixels (3.6 GB as RGBA) decoded."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\x00" * (200 * 1024 * 1024))
    return out.getvalue()


def polyglot_gif() -> bytes:
    """A real GIF whose bytes also read as JavaScript (`GIF89a=...` then a comment
    extension holding a script): the classic image/script polyglot."""
    out = io.BytesIO()
    Image.new("P", (8, 8), 1).save(out, "GIF")
    gif = out.getvalue()
    script = b"*/=1;alert(document.cookie);/*"
    comment = b"\x21\xfe" + bytes([len(script)]) + script + b"\x00"
    return gif[:13] + comment + gif[13:]


HOSTILE = {
    # name: (bytes, the content type the client claims)
    "page.html": (b"<!doctype html><script>alert(document.cookie)</script>", "text/html"),
    "logo.svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "image/svg+xml",
    ),
    "cat.png": (b"<html><body onload=alert(1)>not a png</body></html>", "image/png"),
    "bomb.png": (zip_bomb(), "image/png"),
    "empty.txt": (b"", "text/plain"),
}


def form(
    files: list[tuple[str, bytes, str]], fields: dict[str, str] | None = None
) -> tuple[dict[str, str], bytes]:
    """A multipart body built by hand, so a test controls every byte of it (file
    names with NUL or bidi characters that a client library would change)."""
    out = bytearray()
    for name, value in (fields or {}).items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for filename, data, content_type in files:
        out += f"--{BOUNDARY}\r\n".encode()
        out += b'Content-Disposition: form-data; name="file"; filename="'
        out += filename.replace('"', "%22").encode("utf-8", "surrogatepass") + b'"\r\n'
        out += f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, bytes(out)


async def upload(
    browser: Browser,
    room: int,
    files: list[tuple[str, bytes, str]],
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    headers, body = form(files, fields)
    return await browser.api(
        "POST", f"/api/rooms/{room}/attachments", content=body, headers=headers
    )


async def uploaded(browser: Browser, room: int, name: str, data: bytes, **fields: str) -> dict:
    response = await upload(browser, room, [(name, data, "application/octet-stream")], fields)
    assert response.status_code == 201, response.text
    return response.json()


def uploads(server: Server) -> Path:
    return Path(server.env["TALKROOM_DATA_DIR"]) / "uploads"


def stored(server: Server) -> set[str]:
    folder = uploads(server)
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


async def wait_until(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        await asyncio.sleep(0.05)


def assert_inert(response: httpx.Response) -> None:
    """What every file answer carries, whatever the file."""
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("sandbox")
    cache = response.headers["cache-control"]
    assert "private" in cache and "public" not in cache


# Tests -------------------------------------------------------------------------


async def test_an_image_gets_a_thumbnail_and_reaches_every_socket_and_a_resume(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    async with await bob.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.drain(0.3)
        message = await uploaded(alice, room, "red.png", png(800, 600), text="look *here*")
        frame = await inbox.wait_for(f'id="message-{message["id"]}"')
    attachment = message["attachment"]
    assert message["text"] == "look *here*" and message["attachments"] == [attachment]
    assert attachment["content_type"] == "image/png" and attachment["name"] == "red.png"
    assert attachment["url"] == f"/attachments/{attachment['id']}"
    assert attachment["thumbnail_url"] == f"/attachments/{attachment['id']}/thumbnail"
    assert f'href="{attachment["url"]}" data-lightbox' in frame
    assert f'src="{attachment["thumbnail_url"]}"' in frame and "<em>here</em>" in frame
    # Fan-out relays the frame to every socket: a thumbnail link, not the image.
    assert len(frame) < 2000, len(frame)
    # The names on disk are the random ids, never the client's name.
    assert attachment["id"] in stored(server) and "red.png" not in stored(server)

    thumb = await bob.client.get(attachment["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert_inert(thumb)
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert max(image.size) <= 480 and image.size[0] > image.size[1]
    full = await bob.client.get(attachment["url"])
    assert full.content == png(800, 600) and full.headers["content-type"] == "image/png"
    assert full.headers["content-disposition"].startswith("inline;")
    assert_inert(full)
    again = await bob.client.get(attachment["url"], headers={"If-None-Match": full.headers["etag"]})
    assert again.status_code == 304

    # A socket that resumes from before it gets the same message, from the database.
    async with await bob.socket(room, after=message["seq"] - 1) as ws:
        await Inbox(ws).wait_for(f'src="{attachment["thumbnail_url"]}"')
    page = await bob.api("GET", f"/api/rooms/{room}/messages")
    listed = next(m for m in page.json() if m["id"] == message["id"])
    assert listed["attachment"] == attachment


async def test_hostile_files_are_only_ever_downloads(server: Server, make_user, room: int) -> None:
    alice, bob = await make_user(), await make_user()
    for name, (data, claimed) in HOSTILE.items():
        response = await upload(alice, room, [(name, data, claimed)])
        assert response.status_code == 201, (name, response.text)
        attachment = response.json()["attachment"]
        assert attachment["thumbnail_url"] is None, name
        assert attachment["size"] == len(data)
        assert attachment["content_type"] in ("application/octet-stream", "application/zip")
        assert 'class="attachment-card"' in response.json()["html"]
        got = await bob.client.get(attachment["url"])
        assert got.status_code == 200 and got.content == data, name
        assert got.headers["content-disposition"].startswith("attachment;"), name
        assert got.headers["content-type"] in ("application/octet-stream", "application/zip")
        assert_inert(got)
        gone = await bob.client.get(f"{attachment['url']}/thumbnail")
        assert gone.status_code == 404
    # The zip (200 MB of zeros inside) was sniffed for what it is, never opened.


async def test_a_polyglot_gif_is_an_image_and_never_a_script(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    data = polyglot_gif()
    message = await uploaded(alice, room, "funny.js", data)
    attachment = message["attachment"]
    assert attachment["content_type"] == "image/gif"
    got = await alice.client.get(attachment["url"])
    # Shown as a picture at most: nosniff forbids running an image/gif as a script.
    assert got.headers["content-type"] == "image/gif" and got.content == data
    assert_inert(got)
    if attachment["thumbnail_url"]:
        thumb = await alice.client.get(attachment["thumbnail_url"])
        assert b"alert" not in thumb.content  # a new image: nothing of the original's bytes


async def test_a_pixel_bomb_is_a_plain_file_and_never_decoded(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    bomb = pixel_bomb()
    assert len(bomb) < LIMIT
    started = time.monotonic()
    message = await uploaded(alice, room, "huge.png", bomb)
    # Decoding 900 million pixels would take far longer (and 3.6 GB).
    assert time.monotonic() - started < 5
    attachment = message["attachment"]
    assert attachment["content_type"] == "image/png" and attachment["thumbnail_url"] is None
    got = await alice.client.get(attachment["url"])
    assert got.headers["content-disposition"].startswith("attachment;")
    assert (await alice.api("GET", "/api/me")).status_code == 200  # still serving


async def test_orientation_is_applied_metadata_dropped_and_a_gif_shows_its_first_frame(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    Image.new("RGB", (200, 100), (0, 128, 255)).save(out, "JPEG", exif=exif.tobytes())
    photo = await uploaded(alice, room, "photo.jpg", out.getvalue())
    assert photo["attachment"]["content_type"] == "image/jpeg"
    thumb = await alice.client.get(photo["attachment"]["thumbnail_url"])
    assert b"SecretCam" not in thumb.content
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (100, 200)  # turned upright
        assert not image.getexif()

    frames = [Image.new("RGB", (40, 40), color) for color in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    animated = await uploaded(alice, room, "blink.gif", out.getvalue())
    thumb = await alice.client.get(animated["attachment"]["thumbnail_url"])
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert getattr(image, "n_frames", 1) == 1
        red, green, blue = image.convert("RGB").getpixel((20, 20))[:3]
        assert red > 200 and blue < 60


async def test_file_names_are_cleaned_for_display_and_escaped(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    names = {
        "../../../etc/passwd": "passwd",
        "..\\..\\boot.ini": "boot.ini",
        "nul\x00byte.txt": "nulbyte.txt",
        "invoice\u202egnp.exe": "invoicegnp.exe",
        "<img src=x onerror=alert(1)>.txt": "<img src=x onerror=alert(1)>.txt",
    }
    for raw, shown in names.items():
        message = await uploaded(alice, room, raw, b"hello")
        assert message["attachment"]["name"] == shown, raw
        assert "<img src=x" not in message["html"]
        if "<" in shown:
            assert "&lt;img src=x onerror=alert(1)&gt;.txt" in message["html"]
        got = await alice.client.get(message["attachment"]["url"])
        header = got.headers["content-disposition"]
        assert header.isascii() and "\x00" not in header and "/" not in header.split(";")[1]
        assert unquote(header.split("filename*=UTF-8''")[1]) == shown
    long = await uploaded(alice, room, "a" * 1000 + ".pdf", b"%PDF-1.4 tiny")
    name = long["attachment"]["name"]
    assert len(name) <= 200 and name.endswith(".pdf")


async def test_a_truncated_body_stores_nothing(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    before = stored(server)
    headers, body = form([("cut.bin", b"x" * 50_000, "application/octet-stream")])
    cut = body[: len(body) // 2]
    response = await alice.api(
        "POST", f"/api/rooms/{room}/attachments", content=cut, headers=headers
    )
    assert response.status_code == 422 and "cut short" in response.json()["detail"]
    assert stored(server) == before

    # The client goes away mid-body: the server drops what it had.
    request = (
        f"POST /api/rooms/{room}/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {alice.cookie_header}\r\nX-CSRF-Token: {alice.csrf}\r\n"
        f"Content-Type: {headers['Content-Type']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(request + cut)
        await asyncio.sleep(0.5)
    await wait_until(lambda: stored(server) == before)
    page = await alice.api("GET", f"/api/rooms/{room}/messages")
    assert all(m["author"] != alice.username for m in page.json())
    assert "ClientDisconnect" not in server.log.read_text()  # answered, not a traceback


async def test_a_body_over_the_limit_is_413_and_leaves_nothing(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    before = stored(server)
    # Declared too large: refused before a byte is read.
    headers, body = form([("big.bin", b"x" * (LIMIT + 200_000), "application/octet-stream")])
    response = await alice.api(
        "POST", f"/api/rooms/{room}/attachments", content=body, headers=headers
    )
    assert response.status_code == 413, response.text
    assert stored(server) == before

    # Streamed without a length: counted as it arrives, stopped at the limit.
    async def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await alice.api(
        "POST", f"/api/rooms/{room}/attachments", content=chunks(), headers=headers
    )
    assert response.status_code == 413, response.text
    assert "1 MB" in response.json()["detail"]
    assert stored(server) == before  # no file, no temporary file
    # Two files that fit alone but not together.
    half = b"y" * (LIMIT // 2 + 1000)
    response = await upload(alice, room, [("a.bin", half, "x/y"), ("b.bin", half, "x/y")])
    assert response.status_code == 413 and stored(server) == before
    page = await alice.api("GET", f"/api/rooms/{room}/messages")
    assert all(m["author"] != alice.username for m in page.json())


async def test_fifty_uploads_at_once_are_rate_limited(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    before, started = stored(server), time.monotonic()
    answers = await asyncio.gather(
        *(upload(alice, room, [(f"f{i}.txt", b"data %d" % i, "text/plain")]) for i in range(50))
    )
    elapsed = time.monotonic() - started
    codes = [a.status_code for a in answers]
    assert set(codes) == {201, 429}, codes
    # The bucket (burst 10, 5 a second) refills while a loaded machine takes its time.
    assert codes.count(201) <= 10 + 5 * elapsed + 1, (codes, elapsed)
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    saved = {a.json()["attachment"]["id"] for a in answers if a.status_code == 201}
    assert stored(server) - before == saved  # the refused ones stored nothing


async def test_only_members_fetch_a_private_rooms_files(
    server: Server, make_user, unique: str
) -> None:
    owner, friend, outsider = await make_user(), await make_user(), await make_user()
    made = await owner.api("POST", "/api/rooms", json={"name": f"s-{unique}", "kind": "private"})
    private = made.json()["id"]
    put = await owner.api("PUT", f"/api/rooms/{private}/members/{await user_id(friend)}")
    assert put.status_code == 204
    message = await uploaded(owner, private, "plan.png", png())
    urls = [message["attachment"]["url"], message["attachment"]["thumbnail_url"]]
    for url in urls:
        assert (await friend.client.get(url)).status_code == 200
        missing = await outsider.client.get(url)
        assert missing.status_code == 404 and missing.json() == {"detail": "No such file."}
        assert (await httpx.AsyncClient(base_url=server.base).get(url)).status_code == 401
    never = await outsider.client.get("/attachments/AAAAAAAAAAAAAAAAAAAAAA")
    assert never.status_code == 404 and never.json() == missing.json()
    # A non-member cannot post into it either: as for an unknown room.
    refused = await upload(outsider, private, [("x.txt", b"x", "text/plain")])
    assert refused.status_code == 404

    gone = await owner.api("DELETE", f"/api/rooms/{private}/members/{await user_id(friend)}")
    assert gone.status_code == 204
    for url in urls:
        assert (await friend.client.get(url)).status_code == 404


async def test_a_range_request_gets_that_part(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    data = bytes(range(256)) * 1000
    message = await uploaded(alice, room, "data.bin", data)
    url = message["attachment"]["url"]
    part = await alice.client.get(url, headers={"Range": "bytes=1000-1099"})
    assert part.status_code == 206
    assert part.content == data[1000:1100]
    assert part.headers["content-range"] == f"bytes 1000-1099/{len(data)}"
    assert_inert(part)


async def test_deleting_the_message_deletes_its_files(server: Server, make_user, room: int) -> None:
    alice, bob = await make_user(), await make_user()
    before = stored(server)
    message = await uploaded(alice, room, "gone.png", png())
    attachment = message["attachment"]
    files = stored(server) - before
    assert len(files) == 2 and attachment["id"] in files  # the file and its thumbnail
    # Edited, the caption changes and the file stays.
    edit = await alice.api(
        "PATCH", f"/api/rooms/{room}/messages/{message['id']}", json={"text": "new caption"}
    )
    assert edit.status_code == 200 and 'class="attachment-image"' in edit.json()["html"]
    deleted = await alice.api("DELETE", f"/api/rooms/{room}/messages/{message['id']}")
    assert deleted.status_code == 204
    await wait_until(lambda: not files & stored(server))
    for url in (attachment["url"], attachment["thumbnail_url"]):
        assert (await bob.client.get(url)).status_code == 404
    page = await bob.api("GET", f"/api/rooms/{room}/messages")
    tomb = next(m for m in page.json() if m["id"] == message["id"])
    assert tomb["deleted"] and tomb["attachment"] is None


async def test_uploads_need_the_csrf_header_with_a_cookie(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    before = stored(server)
    headers, body = form([("x.txt", b"x", "text/plain")], {"csrf_token": alice.csrf})
    response = await alice.client.post(
        f"/api/rooms/{room}/attachments", content=body, headers=headers
    )
    assert response.status_code == 403 and stored(server) == before


async def test_files_survive_a_restart(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    data = png(120, 90, (10, 200, 10))
    message = await uploaded(alice, room, "kept.png", data)
    server.stop()
    server.start()
    got = await alice.client.get(message["attachment"]["url"])
    assert got.status_code == 200 and got.content == data
    thumb = await alice.client.get(message["attachment"]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"


async def test_files_of_a_deleted_room_are_swept(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A deleted room cascades to its messages' attachments in the database; the
    sweep (every 0.3 s here, for files over 2 s old) takes the files, and an old
    temporary file, and leaves the rest."""
    settings = {"storage_sweep_interval": "0.3", "storage_sweep_age": "2"}
    with running_server(tmp_path_factory.mktemp("sweep"), **settings) as own:
        admin = Browser(own)
        assert (await admin.register("sweeper")).status_code == 303
        own.set_admin(admin.username)
        rooms = []
        for name in ("kept", "doomed"):
            made = await admin.api("POST", "/api/rooms", json={"name": name})
            rooms.append(made.json()["id"])
        kept = await uploaded(admin, rooms[0], "kept.png", png())
        before = stored(own)
        await uploaded(admin, rooms[1], "doomed.png", png())
        doomed = stored(own) - before
        leftover = uploads(own) / ".upload-crashedAAAAAAAAAAAAAA"
        leftover.write_bytes(b"half")
        deleted = await admin.api("DELETE", f"/api/rooms/{rooms[1]}")
        assert deleted.status_code == 204
        await wait_until(lambda: not doomed & stored(own) and not leftover.exists(), 20)
        assert kept["attachment"]["id"] in stored(own)
        assert (await admin.client.get(kept["attachment"]["url"])).status_code == 200
        await admin.close()
