"""Start and stop the servers under test: Redis, the Django Channels peer, talkroom.

Servers run pinned to core 1 (`taskset`), the loadgen to core 0, so neither
steals the other's CPU. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import webclient

BENCH = Path(__file__).resolve().parent
PEER_DIR = Path(
    os.environ.get("BENCH_PEER_DIR", BENCH.parent.parent / "shared/peers/django_channels")
)
PEER_DB = Path(os.environ.get("BENCH_PEER_DB", "/tmp/peer_django_channels/db.sqlite3"))
TALKROOM_BIN = Path(os.environ.get("BENCH_TALKROOM", BENCH.parent / ".venv/bin/talkroom"))
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/talkroom-bench"))
# Our own Redis: 6379 belongs to the other engineers' tests. Two bench runs side by
# side need different ports (and BENCH_WORK directories), or one stops the other's Redis.
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6390"))
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}"
# PostgreSQL (trust auth): the admin database to connect to, and the one the bench owns.
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "talkroom_bench")
LOGS = WORK / "logs"


def raise_nofile() -> None:
    """Thousands of sockets need thousands of descriptors (children inherit this)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str] | None = None  # talkroom's, so the CLI reaches the same database

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn and daphne shut down cleanly on it
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=60)  # a loaded machine can take a while to reap it


def spawn(
    name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, preexec_fn=raise_nofile
        )
    return proc, log


def wait_http(
    proc: subprocess.Popen[bytes], port: int, path: str, log: Path, timeout: float = 300.0
) -> None:
    """Poll until the server answers 200 (run.sh may build its venv first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError):
            if webclient.request(port, "GET", path, timeout=5).status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} did not answer {path} in {timeout:.0f} s")


# -- Redis ---------------------------------------------------------------------
def redis_cli(*args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


def start_redis() -> subprocess.Popen[bytes] | None:
    """Our Redis on 6390, unless one answers there already (then it is left alone)."""
    if redis_cli("ping") == "PONG":
        return None
    proc, _ = spawn(
        "redis",
        [
            "redis-server",
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
    for _ in range(100):
        if redis_cli("ping") == "PONG":
            return proc
        time.sleep(0.1)
    raise RuntimeError("redis-server on 6390 did not start")


# -- the Django Channels peer ------------------------------------------------
def start_peer(mode: str, port: int, users: int, cpu: str = "1") -> Server:
    redis_cli("flushall")  # stale channel-layer state from an earlier run skews the next
    argv = [
        str(PEER_DIR / "run.sh"),
        "--mode",
        mode,
        "--port",
        str(port),
        "--redis",
        f"{REDIS_URL}/0",
        "--users",
        str(users),
        "--cpu",
        cpu,
        "--db",
        str(PEER_DB),
    ]
    proc, log = spawn(f"peer-{mode}", argv, cwd=PEER_DIR)
    wait_http(proc, port, "/login/", log)
    return Server(f"peer-{mode}", proc, port, log)


def peer_setup(users: int) -> None:
    """Build the peer's venv, database, users and room once (`run.sh --setup-only`),
    so the fixtures below can write into its SQLite file before the first start."""
    if PEER_DB.exists():
        return
    argv = [str(PEER_DIR / "run.sh"), "--users", str(users), "--db", str(PEER_DB), "--setup-only"]
    subprocess.run(argv, cwd=PEER_DIR, check=True, timeout=1800)


def peer_rooms(count: int) -> None:
    """Rooms bench-1..bench-{count-1} beside run.sh's 'bench' (the many-rooms scenario)."""
    with sqlite3.connect(PEER_DB, timeout=30) as db:
        for i in range(1, count):
            name = f"bench-{i}"
            if db.execute("SELECT 1 FROM chat_room WHERE name=?", (name,)).fetchone() is None:
                db.execute("INSERT INTO chat_room (name) VALUES (?)", (name,))


def peer_preload(count: int) -> None:
    """Replace room 'bench''s messages with COUNT history ones (as manage.py bench_preload)."""
    with sqlite3.connect(PEER_DB, timeout=30) as db:
        room = db.execute("SELECT id FROM chat_room WHERE name='bench'").fetchone()[0]
        authors = [
            r[0]
            for r in db.execute(
                "SELECT id FROM auth_user WHERE username LIKE 'bench%' ORDER BY id LIMIT 10"
            )
        ]
        db.execute("DELETE FROM chat_message WHERE room_id=?", (room,))
        now = time.strftime("%Y-%m-%d %H:%M:%S.000000")
        db.executemany(
            "INSERT INTO chat_message (room_id, user_id, content, created) VALUES (?,?,?,?)",
            (
                (
                    room,
                    authors[i % len(authors)],
                    f"history message {i} lorem ipsum dolor sit amet",
                    now,
                )
                for i in range(count)
            ),
        )


# -- PostgreSQL ----------------------------------------------------------------
def psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


def fresh_postgres() -> str:
    """An empty bench database (dropped first: every start begins equal); its talkroom URL."""
    psql(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{PG_DATABASE}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{PG_DATABASE}"


# -- talkroom ------------------------------------------------------------------
def talkroom_env(
    data_dir: Path, redis_url: str | None = None, database_url: str | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALKROOM_")}
    env.update(
        TALKROOM_DATA_DIR=str(data_dir), TALKROOM_MESSAGE_RATE="0", TALKROOM_ENV="development"
    )
    if redis_url:
        env["TALKROOM_REDIS_URL"] = redis_url
    if database_url:
        env["TALKROOM_DATABASE_URL"] = database_url
    return env


def talkroom_available() -> bool:
    return TALKROOM_BIN.exists()


def talkroom_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(TALKROOM_BIN), *args],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
    )
    return (done.stdout + done.stderr).strip()


def fresh_data_dir(name: str) -> Path:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def start_talkroom(
    port: int,
    data_dir: Path,
    workers: int = 1,
    cpu: str = "1",
    redis_url: str | None = None,
    database_url: str | None = None,
) -> Server:
    env = talkroom_env(data_dir, redis_url, database_url)
    # The room exists before anyone connects, made the operator's way.
    talkroom_cli(env, "createroom", "bench")
    argv = [
        "taskset",
        "-c",
        cpu,
        str(TALKROOM_BIN),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc, log = spawn(f"talkroom-w{workers}", argv, env=env, cwd=data_dir)
    wait_http(proc, port, "/healthz", log, timeout=120)
    return Server(f"talkroom-w{workers}", proc, port, log, env)


def talkroom_rooms(server: Server, count: int) -> None:
    """Rooms bench-1..bench-{count-1}, made with `talkroom createroom` (~0.5 s each).

    The contract's admin POST /api/rooms would be faster, but talkroom answered it
    with 405 when this was written, so the operator's CLI is the way that works."""
    if count <= 1 or server.env is None:
        return
    env = server.env
    jar = webclient.talkroom_login(server.port, "bench0")
    have = webclient.room_ids("talkroom", server.port, jar)
    for i in range(1, count):
        if f"bench-{i}" not in have:
            talkroom_cli(env, "createroom", f"bench-{i}")


def talkroom_preload(data_dir: Path, count: int) -> None:
    """COUNT history messages in room 'bench', written straight into the SQLite file
    while the server is stopped (100k through the API would take minutes)."""
    db_path = data_dir / "talkroom.db"
    with sqlite3.connect(db_path, timeout=30) as db:
        room = db.execute("SELECT id FROM rooms WHERE name='bench'").fetchone()[0]
        authors = [r[0] for r in db.execute("SELECT id FROM users ORDER BY id LIMIT 10")]
        db.execute("DELETE FROM messages WHERE room_id=?", (room,))
        now = time.strftime("%Y-%m-%d %H:%M:%S.000000")
        db.executemany(
            "INSERT INTO messages (room_id, author_id, seq, rev, text, client_id, created_at) "
            "VALUES (?,?,?,?,?,NULL,?)",
            (
                (
                    room,
                    authors[i % len(authors)],
                    i + 1,
                    i + 1,
                    f"history message {i} lorem ipsum dolor sit amet",
                    now,
                )
                for i in range(count)
            ),
        )
        db.execute("UPDATE rooms SET last_seq=? WHERE id=?", (count, room))
