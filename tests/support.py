"""Real servers on real ports, and clients that talk to them like a browser does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_RE = re.compile(r'<article class="msg" id="message-(\d+)" data-seq="(\d+)"')
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"
# Idle connections are dropped well before uvicorn's 5 s keep-alive: at httpx's own
# 5 s both ends gave up at once, and a request sent as the server closed the
# connection failed with "Server disconnected without sending a response".
KEEP_ALIVE = httpx.Limits(keepalive_expiry=2)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A ``talkroom serve`` process on its own port."""

    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    # The first account's client (see take_first_account): tests' set-up goes through
    # its API, a few milliseconds, where a CLI process is most of a second of CPU.
    founder: httpx.Client | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.base

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            cwd=ROOT,
            timeout=60,
        )

    def start(self, *extra: str) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(self.port), *extra],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        try:
            self.wait_ready()
        except RuntimeError:
            # Not left running: a server that never answered still holds a port,
            # a database and CPU for the rest of the run (31 were left by one).
            self.stop(signal.SIGKILL)
            raise

    def wait_ready(self, timeout: float = 60) -> None:
        # Generous: on a loaded machine (a rehearsal beside other work) servers that
        # had printed "running" still missed 30 s of one-second /healthz tries.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int | None = None) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None
        if sig is None:
            self.process.terminate()
        else:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)

    def create_room(self, name: str, description: str = "") -> int:
        """A public room, made by the founder's API call, else (no founder, or the
        founder's session ended) by ``talkroom createroom``."""
        body = {"name": name, "description": description}
        made = self._as_founder("POST", "/api/rooms", json=body)
        if made is not None and made.status_code == 201:
            return int(made.json()["id"])
        out = self.cli("createroom", name, "--description", description).stdout
        return int(re.search(r"\(id (\d+)\)", out).group(1))  # type: ignore[union-attr]

    def set_admin(self, username: str) -> None:
        """Make ``username`` an admin, as ``create_room`` makes a room."""
        users = self._as_founder("GET", "/api/users")
        if users is not None and users.status_code == 200:
            (uid,) = [u["id"] for u in users.json() if u["username"] == username]
            made = self._as_founder("PATCH", f"/api/users/{uid}", json={"is_admin": True})
            if made is not None and made.status_code == 200:
                return
        self.cli("setadmin", username)

    def _as_founder(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        if self.founder is None:
            return None
        return self.founder.request(method, path, **kwargs)


# argon2id at its least (app.settings says why the suite lowers it): a sign-up at
# the default cost is 0.3 s of every core, and the suite signs up thousands.
CHEAP_PASSWORDS = {"password_memory_kib": "8", "password_passes": "1", "password_lanes": "1"}


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALKROOM_")}
    settings = {**CHEAP_PASSWORDS, **settings}
    env["TALKROOM_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in settings.items():
        env[f"TALKROOM_{key.upper()}"] = value
    return env


FOUNDER = "founder"


def take_first_account(server: Server) -> None:
    """Register the first account (which becomes the admin) as ``founder``, so the
    accounts a test makes are ordinary users whatever order tests run in. One HTTP
    sign-up, not a CLI process. A database that has accounts already is left alone."""
    client = httpx.Client(base_url=server.base, timeout=20, limits=KEEP_ALIVE)
    form = client.get("/register")
    found = CSRF_RE.search(form.text)
    if form.status_code != 200 or found is None:
        client.close()
        return  # invite-only with accounts already: not a first run
    data = {"username": FOUNDER, "password": PASSWORD, "csrf_token": found.group(1)}
    if client.post("/register", data=data).status_code != 303:
        client.close()
        return
    client.headers["X-CSRF-Token"] = found.group(1)
    server.founder = client


@contextmanager
def running_server(
    data_dir: Path, port: int | None = None, *, first_run: bool = False, **settings: str
) -> Iterator[Server]:
    """A server on ``data_dir``; its first account is taken (see take_first_account)
    unless ``first_run``, for tests of what the first person meets."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Server(port or free_port(), server_env(data_dir, **settings), data_dir / "server.log")
    server.start()
    try:
        if not first_run:
            take_first_account(server)
        yield server
    finally:
        if server.founder is not None:
            server.founder.close()
        server.stop()


@dataclass
class Browser:
    """One browser profile: its cookies, its CSRF token, its sockets."""

    server: Server
    client: httpx.AsyncClient = field(init=False)
    csrf: str = ""
    username: str = ""

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.server.base, timeout=20, limits=KEEP_ALIVE)

    async def fetch_csrf(self, path: str = "/register") -> str:
        response = await self.client.get(path)
        self.csrf = CSRF_RE.search(response.text).group(1)  # type: ignore[union-attr]
        return self.csrf

    async def register(self, username: str, password: str = PASSWORD) -> httpx.Response:
        await self.fetch_csrf()
        self.username = username
        return await self.client.post(
            "/register", data={"username": username, "password": password, "csrf_token": self.csrf}
        )

    async def login(self, username: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
        await self.fetch_csrf("/login")
        self.username = username
        data = {"username": username, "password": password, "csrf_token": self.csrf, **extra}
        return await self.client.post("/login", data=data)

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.client.cookies.jar)

    async def socket(
        self, room_id: int, *, after: int | None = None, origin: str | None = "", **kwargs: Any
    ) -> websockets.ClientConnection:
        path = f"/ws/rooms/{room_id}" + (f"?after={after}" if after is not None else "")
        return await self.connect(path, origin=origin, **kwargs)

    async def connect(
        self, path: str, *, origin: str | None = "", **kwargs: Any
    ) -> websockets.ClientConnection:
        """A WebSocket to ``path`` with this browser's cookies and (by default) Origin."""
        headers = {"Cookie": self.cookie_header}
        return await websockets.connect(
            self.server.ws_url(path),
            additional_headers=headers,
            origin=self.server.origin if origin == "" else origin,  # type: ignore[arg-type]
            max_size=None,
            **kwargs,
        )

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def close(self) -> None:
        await self.client.aclose()


class Inbox:
    """Everything one socket received, with helpers to wait for what a test expects."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[str] = []

    async def _next(self, timeout: float) -> str:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        text = frame if isinstance(frame, str) else frame.decode()
        self.frames.append(text)
        return text

    async def wait_for(self, needle: str | re.Pattern[str], timeout: float = 15) -> str:
        """The first new frame matching ``needle``. The default wait is long: it is
        how long a frame may be late on a loaded CI machine, not a latency target
        (5 s was missed there)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no frame matching {needle!r}; got {self.frames[-5:]}")
            frame = await self._next(left)
            if (needle in frame) if isinstance(needle, str) else needle.search(frame):
                return frame

    async def drain(self, quiet: float = 0.3) -> list[str]:
        """Frames that arrive until the socket is quiet for ``quiet`` seconds."""
        got: list[str] = []
        while True:
            try:
                got.append(await self._next(quiet))
            except TimeoutError:
                return got

    def messages(self) -> list[tuple[int, int]]:
        """(id, seq) of every chat message received, in arrival order."""
        return [(int(i), int(s)) for f in self.frames for i, s in MESSAGE_RE.findall(f)]

    async def wait_messages(
        self, count: int, timeout: float = 10, stall: float | None = None
    ) -> list[tuple[int, int]]:
        """Every message so far, once ``count`` have arrived. Gives up after ``timeout``
        seconds or, with ``stall``, only after that long without a new one: a busy
        machine makes messages late, a lost one never comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages()) < count:
            had = len(self.messages())
            if stall is not None:
                deadline = loop.time() + stall
            while len(self.messages()) == had:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(f"got {had} of {count} messages")
                with contextlib.suppress(TimeoutError):
                    await self._next(left)
        return self.messages()


def database_url(server: Server) -> str:
    """The SQLAlchemy URL ``server`` stores its data in."""
    default = Path(server.env["TALKROOM_DATA_DIR"]) / "talkroom.db"
    return server.env.get("TALKROOM_DATABASE_URL", f"sqlite+aiosqlite:///{default}")


async def query(server: Server, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from ``server``'s database, SQLite or PostgreSQL alike."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url(server))
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def execute(server: Server, sql: str, **params: Any) -> int:
    """Change ``server``'s database behind its back (committed); the rows touched."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url(server))
    try:
        async with engine.begin() as conn:
            return (await conn.execute(text(sql), params)).rowcount
    finally:
        await engine.dispose()


def which(name: str) -> str | None:
    return shutil.which(name)


PG_ADMIN_URL = os.environ.get(
    "TALKROOM_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/test"
)


# Databases this test run made; dropped when it ends (see conftest.py).
CREATED_DATABASES: list[str] = []


async def _admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def postgres_url(name: str) -> str:
    """A fresh, empty PostgreSQL database for one test; skips (or fails in CI) without one.
    The name carries this process's id, so test runs side by side never share one."""
    import asyncpg
    import pytest

    database = f"{name}_{os.getpid()}"
    try:
        asyncio.run(
            _admin(
                f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                f'CREATE DATABASE "{database}"',
            )
        )
    except (OSError, asyncpg.PostgresError) as exc:
        if in_ci():
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    CREATED_DATABASES.append(database)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


def drop_created_databases() -> None:
    drops = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in CREATED_DATABASES]
    if drops:
        asyncio.run(_admin(*drops))
    CREATED_DATABASES.clear()
