"""Helpers for tests over several servers sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from support import (
    PASSWORD,
    Browser,
    Inbox,
    Server,
    free_port,
    in_ci,
    server_env,
    take_first_account,
    which,
)

SECRET = "scale-test-secret-shared-by-every-server"
# Like TALKROOM_TEST_POSTGRES: runs side by side (two work trees) each point at a
# redis-server of their own, since the tests' database numbers are fixed.
REDIS = os.environ.get("TALKROOM_TEST_REDIS", "redis://127.0.0.1:6379")
MEMBERS_RE = re.compile(r'<ul id="members"[^>]*>(.*?)</ul>', re.S)


def redis_db(number: int) -> str:
    """A Redis database of its own for one test module, emptied first."""
    import redis

    url = f"{REDIS}/{number}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        if in_ci():
            raise
        pytest.skip(f"Redis is not reachable at {REDIS}: {exc}")
    return url


def scale_env(data_dir: Path, database_url: str, redis_url: str, **settings: str) -> dict:
    return server_env(
        data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=SECRET,
        **settings,
    )


@contextmanager
def servers(
    root: Path, count: int, database_url: str, redis_url: str, *extra: str, **settings: str
) -> Iterator[list[Server]]:
    """``count`` servers on their own ports, sharing one database and one Redis."""
    started: list[Server] = []
    try:
        for n in range(count):
            data_dir = root / f"server{n}"
            data_dir.mkdir(parents=True, exist_ok=True)
            env = scale_env(data_dir, database_url, redis_url, **settings)
            srv = Server(free_port(), env, data_dir / "server.log")
            srv.start(*extra)
            if not started:
                take_first_account(srv)  # so test users are ordinary ones
            started.append(srv)
        yield started
    finally:
        for srv in started:
            srv.stop()


async def user_on(srv: Server, name: str) -> Browser:
    """Register ``name`` through ``srv`` (or log in, if someone registered it already)."""
    browser = Browser(srv)
    response = await browser.register(name)
    if response.status_code != 303:
        response = await browser.login(name, PASSWORD)
    assert response.status_code == 303, response.text
    return browser


def tab(browser: Browser, srv: Server) -> Browser:
    """The same browser profile (same session) talking to another server."""
    other = Browser(srv)
    other.client.cookies = browser.client.cookies
    other.csrf, other.username = browser.csrf, browser.username
    return other


async def online(browser: Browser, room: int) -> int:
    rooms = (await browser.client.get("/api/rooms")).json()
    return next(r["online"] for r in rooms if r["id"] == room)


async def eventually(check, timeout: float, every: float = 0.2):  # noqa: ANN001, ANN201
    """Poll the async ``check`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


async def history(browser: Browser, room: int) -> list[tuple[int, int]]:
    """(id, seq) of every message of the room, oldest first, through the API."""
    got: list[tuple[int, int]] = []
    before: int | None = None
    while True:
        params = {"limit": 100, **({"before": before} if before else {})}
        page = (await browser.client.get(f"/api/rooms/{room}/messages", params=params)).json()
        if not page:
            return list(reversed(got))
        got += [(m["id"], m["seq"]) for m in page]
        before = page[-1]["seq"]


def members(frame: str) -> list[str]:
    match = MEMBERS_RE.search(frame)
    assert match, frame
    return re.findall(r"<li data-person=\"([^\"]*)\"", match.group(1))


def notices(inbox: Inbox, kind: str, user: str) -> int:
    needle = f'data-notice="{kind}" data-user="{user}"'
    return sum(frame.count(needle) for frame in inbox.frames)


def metric(text: str, name: str) -> float:
    """The value of one unlabelled sample in Prometheus text."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


class RedisProcess:
    """A redis-server of our own on a free port, to stop and start at will."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        if not which("redis-server"):
            if in_ci():
                raise RuntimeError("redis-server is not installed")
            pytest.skip("redis-server is not installed")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)  # a crash: no goodbye to clients
            self.process.wait(timeout=10)

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def health(srv: Server) -> int:
    async with httpx.AsyncClient(base_url=srv.base, timeout=10) as client:
        return (await client.get("/healthz")).status_code


async def scrape(srv: Server) -> str:
    async with httpx.AsyncClient(base_url=srv.base, timeout=10) as client:
        return (await client.get("/metrics")).text
