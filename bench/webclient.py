"""Tiny blocking HTTP client for the setup steps: log in through the real pages.

Logins are CPU-bound on the server (password hashing), so a plain blocking
client in a few threads is as fast as anything fancier and needs no dependency.
Every request goes to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

HOST = "127.0.0.1"
PASSWORD = "benchpass123"
PEER_CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
TALKROOM_CSRF_FIELD = re.compile(rb'name="csrf_token" value="([^"]+)"')
PEER_ROOM_BUTTON = re.compile(rb'data-room-id="(\d+)" data-room-name="([^"]+)"')

Cookies = dict[str, str]


class SetupError(Exception):
    """A setup step (login, room lookup) failed; the message says which."""


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float

    def cookies(self) -> Cookies:
        jar: Cookies = {}
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                parsed = SimpleCookie()
                parsed.load(value)
                for key, morsel in parsed.items():
                    jar[key] = morsel.value
        return jar


def cookie_header(cookies: Cookies) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def request(
    port: int,
    method: str,
    path: str,
    *,
    cookies: Cookies | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 120.0,
) -> Reply:
    all_headers = dict(headers or {})
    if cookies:
        all_headers["Cookie"] = cookie_header(cookies)
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        start = time.perf_counter()
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, resp.getheaders(), data, time.perf_counter() - start)
    finally:
        conn.close()


def peer_login(port: int, username: str) -> Cookies:
    """GET /login/ for the CSRF cookie and field, then POST the form (302 on success)."""
    form_page = request(port, "GET", "/login/")
    jar = form_page.cookies()
    token = PEER_CSRF_FIELD.search(form_page.body)
    if form_page.status != 200 or token is None:
        raise SetupError(f"peer GET /login/ gave {form_page.status} without a CSRF field")
    fields = {
        "csrfmiddlewaretoken": token.group(1).decode(),
        "username": username,
        "password": PASSWORD,
        "next": "/chat/talk/",
    }
    reply = request(port, "POST", "/login/", cookies=jar, form=fields)
    jar.update(reply.cookies())
    if reply.status != 302 or "sessionid" not in jar:
        raise SetupError(f"peer login of {username} gave {reply.status}")
    return jar


def talkroom_form(port: int, path: str, username: str) -> tuple[int, Cookies]:
    """GET the form for the CSRF cookie and hidden field, POST it; status and all cookies."""
    form_page = request(port, "GET", path)
    jar = form_page.cookies()
    token = TALKROOM_CSRF_FIELD.search(form_page.body)
    if form_page.status != 200 or token is None:
        raise SetupError(f"talkroom GET {path} gave {form_page.status} without csrf_token")
    fields = {"username": username, "password": PASSWORD, "csrf_token": token.group(1).decode()}
    reply = request(port, "POST", path, cookies=jar, form=fields)
    jar.update(reply.cookies())
    return reply.status, jar


def talkroom_login(port: int, username: str) -> Cookies:
    """Register (303 + session cookie); if the name is taken, log in instead."""
    status, jar = talkroom_form(port, "/register", username)
    if status != 303:
        status, jar = talkroom_form(port, "/login", username)
    if status != 303:
        raise SetupError(f"talkroom register/login of {username} gave {status}")
    return jar


def cookies_valid(kind: str, port: int, cookies: Cookies) -> bool:
    path = "/chat/talk/" if kind == "peer" else "/api/me"
    return request(port, "GET", path, cookies=cookies).status == 200


def login_all(kind: str, port: int, users: list[str], cache: Path) -> list[Cookies]:
    """Session cookies for every user, reusing the cache while the server's DB keeps them."""
    cached: dict[str, Cookies] = {}
    if cache.exists():
        cached = json.loads(cache.read_text())
        probe = [u for u in (users[0], users[-1]) if u in cached]
        if probe and not all(cookies_valid(kind, port, cached[u]) for u in probe):
            cached = {}  # a new DB: every cached session is gone
    missing = [u for u in users if u not in cached]
    if missing:
        login = peer_login if kind == "peer" else talkroom_login
        start = time.perf_counter()
        # The server hashes passwords on one core: a few threads keep it busy, no more.
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, jar in zip(missing, pool.map(lambda u: login(port, u), missing), strict=True):
                cached[name] = jar
        print(f"logged in {len(missing)} users in {time.perf_counter() - start:.1f} s", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(cached))
    return [cached[u] for u in users]


def room_ids(kind: str, port: int, cookies: Cookies) -> dict[str, int]:
    """Room name -> id, found the way a user finds them (page buttons or the API)."""
    if kind == "peer":
        reply = request(port, "GET", "/chat/talk/", cookies=cookies)
        if reply.status != 200:
            raise SetupError(f"peer GET /chat/talk/ gave {reply.status}")
        return {name.decode(): int(i) for i, name in PEER_ROOM_BUTTON.findall(reply.body)}
    reply = request(port, "GET", "/api/rooms", cookies=cookies)
    if reply.status != 200:
        raise SetupError(f"talkroom GET /api/rooms gave {reply.status}")
    return {room["name"]: int(room["id"]) for room in json.loads(reply.body)}


def room_page(kind: str, port: int, room_id: int, cookies: Cookies) -> Reply:
    """The chat window a user opens: the peer's group view, talkroom's room fragment."""
    if kind == "peer":
        return request(port, "GET", f"/chat/group/{room_id}/", cookies=cookies)
    return request(
        port, "GET", f"/rooms/{room_id}", cookies=cookies, headers={"HX-Request": "true"}
    )
