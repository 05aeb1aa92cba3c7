"""CSRF and Cross-Site WebSocket Hijacking.

The route walk reads the app's own router, so a route added later is checked too:
every unsafe method refuses a cookie-authenticated request without the CSRF token
(403) and changes nothing; no GET changes anything.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from scale_support import user_on
from support import PASSWORD, Browser, Server, running_server
from websockets.exceptions import InvalidStatus

from app.main import create_app
from app.settings import Settings

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Valid values for every field any form or JSON body takes, so that the token is the
# only thing a refused request lacks.
FORM = {
    "username": "csrf_made",
    "password": PASSWORD,
    "next": "/",
    "name": "csrf-made",
    "description": "made by a forged request",
    "is_admin": "true",
    "current_password": PASSWORD,
    "new_password": "a forged new password",
}
JSON = {"name": "csrf-made", "description": "forged", "text": "forged", "is_admin": True}
QUERY = {"before": "2", "limit": "5", "next": "/"}


def app_routes(data_dir: Path) -> list[tuple[str, str]]:
    """(method, path template) of every HTTP route the app serves, from its router."""
    app = create_app(Settings(data_dir=data_dir, secret_key="route-walk"))
    try:
        from fastapi.routing import iter_route_contexts

        entries = [(c.path, c.route) for c in iter_route_contexts(app.routes)]
    except ImportError:  # FastAPI before lazily included routers
        entries = [(getattr(r, "path", ""), r) for r in app.routes]
    return sorted(
        (method, path)
        for path, route in entries
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    )


def fill(path: str, room: int, user: int) -> str:
    path = re.sub(r"\{room_id[^}]*\}", str(room), path)
    path = re.sub(r"\{user_id[^}]*\}", str(user), path)
    return re.sub(r"\{name[^}]*\}", "swagger-ui.css", path)


def snapshot(database: Path) -> dict[str, list[tuple]]:
    """Every row the app keeps (a session's last_seen aside, which reads may touch)."""
    queries = {
        "users": "SELECT id, username, password_hash, is_admin FROM users ORDER BY id",
        "rooms": "SELECT * FROM rooms ORDER BY id",
        "messages": "SELECT * FROM messages ORDER BY id",
        "sessions": "SELECT id, user_id, created_at, expires_at FROM sessions ORDER BY id",
        "api_tokens": "SELECT * FROM api_tokens ORDER BY id",
    }
    with sqlite3.connect(database) as db:
        return {table: db.execute(sql).fetchall() for table, sql in queries.items()}


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("walk"), message_rate="0") as srv:
        yield srv


async def setup_world(srv: Server) -> tuple[Browser, int, int]:
    """An admin (so that no route refuses for lack of rights), a room with a message,
    and another user."""
    admin = await user_on(srv, "walker")
    srv.set_admin(admin.username)
    other = await user_on(srv, "walked_on")
    other_id = (await other.api("GET", "/api/me")).json()["id"]
    room = srv.create_room("walked")
    await admin.api("POST", f"/api/rooms/{room}/messages", json={"text": "hello"})
    await admin.fetch_csrf("/account")
    await other.close()
    return admin, room, other_id


async def forged(admin: Browser, method: str, url: str, headers: dict[str, str]) -> int:
    if url.startswith("/api/"):
        response = await admin.client.request(method, url, json=JSON, headers=headers)
    else:
        response = await admin.client.request(method, url, data=FORM, headers=headers)
    return response.status_code


async def test_every_unsafe_route_refuses_a_cookie_request_without_the_token(
    walked: Server, tmp_path: Path
) -> None:
    routes = app_routes(tmp_path)
    unsafe = [(m, p) for m, p in routes if m in UNSAFE]
    # The walk must see the routes we know of, or it proves nothing.
    assert {("POST", "/login"), ("POST", "/logout"), ("POST", "/account/password")} <= set(unsafe)
    assert {("DELETE", "/api/users/{user_id}"), ("PATCH", "/admin/rooms/{room_id}")} <= set(unsafe)
    admin, room, other = await setup_world(walked)
    attacker = Browser(walked)
    attackers_token = await attacker.fetch_csrf()  # valid, but for another browser
    database = walked.env["TALKROOM_DATA_DIR"] + "/talkroom.db"
    before = snapshot(Path(database))
    refused = []
    for method, path in unsafe:
        url = fill(path, room, other)
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": attackers_token}):
            status = await forged(admin, method, url, headers)
            assert status == 403, (method, path, headers, status)
        refused.append(f"{method} {path}")
    assert snapshot(Path(database)) == before
    assert (await admin.client.get("/api/me")).status_code == 200  # not even logged out
    # The same request with the token goes through: the token was what it lacked.
    made = await admin.api("POST", "/api/rooms", json={"name": "with-token"})
    assert made.status_code == 201
    print(f"\nCSRF: {len(refused)} unsafe routes refused without the token: {refused}")
    await attacker.close()
    await admin.close()


async def test_no_get_route_changes_anything(walked: Server, tmp_path: Path) -> None:
    safe = [p for m, p in app_routes(tmp_path) if m == "GET"]
    assert {"/", "/rooms/{room_id}", "/api/users", "/admin", "/account"} <= set(safe)
    admin = await user_on(walked, "getter")
    walked.set_admin(admin.username)
    room = walked.create_room("got")
    await admin.fetch_csrf("/account")
    await admin.api("POST", f"/api/rooms/{room}/messages", json={"text": "one"})
    other = (await admin.api("GET", "/api/me")).json()["id"]
    database = Path(walked.env["TALKROOM_DATA_DIR"]) / "talkroom.db"
    before = snapshot(database)
    for path in safe:
        response = await admin.client.get(fill(path, room, other), params=QUERY)
        assert response.status_code < 500, (path, response.status_code)
    # GETs on unsafe paths (a link or an <img> can make those) do nothing either.
    for path in ("/logout", "/account/password", "/admin/rooms"):
        assert (await admin.client.get(path)).status_code in (404, 405)
    assert snapshot(database) == before
    assert (await admin.client.get("/api/me")).status_code == 200
    await admin.close()


async def test_login_csrf_is_blocked(walked: Server) -> None:
    """A foreign page cannot log the victim into the attacker's account: without this
    browser's own token the login is refused and no session cookie is set."""
    attacker = await user_on(walked, "login_csrf_attacker")
    token = await attacker.fetch_csrf("/login")
    data = {"username": attacker.username, "password": PASSWORD, "csrf_token": token}
    for victim_has_cookie in (False, True):
        victim = Browser(walked)
        if victim_has_cookie:
            await victim.fetch_csrf("/login")
        response = await victim.client.post("/login", data=data)
        assert response.status_code == 403
        assert "talkroom_session" not in response.headers.get("set-cookie", "")
        assert (await victim.client.get("/api/me")).status_code == 401
        await victim.close()
    await attacker.close()


LISTED = "https://chat.example.com"


def refused_origins(port: int) -> list[str]:
    own = f"http://127.0.0.1:{port}"
    return [
        f"{own}.evil.example",  # lookalike: the real host as a prefix
        f"http://127.0.0.1.evil.example:{port}",
        f"http://evil127.0.0.1:{port}",
        "null",  # sandboxed iframes and file: pages
        f"https://127.0.0.1:{port}",  # other scheme
        f"http://127.0.0.1:{port + 1}",  # other port
        f"http://localhost:{port}",  # the same machine by another name
        "https://evil.chat.example.com",  # sibling/sub-domain of the listed origin
        "https://example.com",  # its parent
        "https://chat.example.com.evil.example",
        "http://chat.example.com",  # the listed host over another scheme
        "https://chat.example.com:8443",  # ... or port
        "https://chat.example.co",
        f"http://evil@127.0.0.1:{port}",  # no browser sends a user in Origin
        f"{own}/path",
        f"http://127.0.0.1:{port}:80",  # an unparsable port (was a 500)
        "",
        "not a url",
    ]


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("origins"), allowed_origins=LISTED) as srv:
        yield srv


async def handshake(browser: Browser, room: int, origin: str) -> int:
    """The HTTP status of the WebSocket handshake (101 when it was let in)."""
    try:
        async with websockets.connect(
            browser.server.ws_url(f"/ws/rooms/{room}"),
            additional_headers={"Cookie": browser.cookie_header, "Origin": origin},
        ):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_websocket_origin_is_matched_exactly(listed: Server) -> None:
    alice = await user_on(listed, "origin_alice")
    room = listed.create_room("origins")
    for origin in refused_origins(listed.port):
        assert await handshake(alice, room, origin) == 403, origin
    for origin in (f"http://127.0.0.1:{listed.port}", LISTED, LISTED + "/", f"{LISTED}:443"):
        assert await handshake(alice, room, origin) == 101, origin
    assert "Traceback" not in listed.log.read_text()
    await alice.close()
