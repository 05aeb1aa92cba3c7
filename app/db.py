"""The async engine and sessions.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and then
writes can fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT), which
no busy timeout helps with. Taking the write lock up front makes writers wait
their turn instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept open on SQLite. Past the pool's size a returned connection is
# closed, and a new one costs a thread (aiosqlite's), the connect and four PRAGMAs:
# with SQLAlchemy's default of 5, 16 concurrent page requests (each holding one for
# its reads, app.web.reads) opened and closed connections all the time.
SQLITE_POOL_SIZE = 20
_SELECT_1 = text("SELECT 1")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver's own
    # implicit BEGIN is always DEFERRED).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        # A migration's autocommit_block: PRAGMA foreign_keys, which a migration
        # copying a table must turn off, is a no-op inside a transaction.
        return
    if options.get("shared_read"):
        # A request's shared reads (Database.shared_reads): each statement is its own
        # snapshot, as each is on PostgreSQL, and the BEGIN's round trip is saved.
        return
    mode = "IMMEDIATE" if options.get("write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database,
            connect_args={"timeout": 30},
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_SIZE,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(settings.database, pool_size=10, max_overflow=20, pool_pre_ping=True)


def create_write_engine(settings: Settings) -> Engine:
    """SQLite's engine for Database.run_write: synchronous (the standard sqlite3
    driver), one connection, used only by one thread of its own."""
    url = make_url(settings.database).set(drivername="sqlite")
    engine = create_sync_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine.execution_options(write=True)  # BEGIN IMMEDIATE, as write() does


# Threads (each with its sqlite3 connection) that run_read's lookups run in: more
# than one, since reads never wait on each other in WAL mode; few, since each is
# a hop of well under a millisecond and the event loop is one core.
SQLITE_READ_THREADS = 4


def create_read_engine(settings: Settings) -> Engine:
    """SQLite's engine for Database.run_read: synchronous (the standard sqlite3
    driver), a connection for each reader thread."""
    url = make_url(settings.database).set(drivername="sqlite")
    engine = create_sync_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=SQLITE_READ_THREADS,
        max_overflow=0,
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


P = ParamSpec("P")
T = TypeVar("T")


def unavailable(exc: BaseException) -> bool:
    """The database is down or unreachable, as opposed to a bug in a query: the
    user is told to try again (503, or an error frame) rather than shown a 500. So is
    a pool with no connection free within its timeout (a storm of handshakes)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class _SharedReads:
    """One request's reads: the session they share, opened at the first read."""

    __slots__ = ("db", "task", "session")

    def __init__(self, db: Database) -> None:
        self.db = db
        # Only the task that opened the scope shares it: a task started inside it
        # copies the context, and two tasks must never use one session at once.
        self.task = asyncio.current_task()
        self.session: AsyncSession | None = None

    def owns(self, db: Database) -> bool:
        return self.db is db and self.task is asyncio.current_task()

    async def end(self) -> None:
        """Give the connection back. The session stays: a read after this checks
        out a connection again (as does a block still holding it), and the
        scope's own end gives that one back too."""
        if self.session is not None:
            await self.session.close()


_shared: ContextVar[_SharedReads | None] = ContextVar("talkroom_shared_reads", default=None)


class Database:
    """Owns the engine; hands out read sessions and write transactions.

    Inside ``shared_reads()`` (a page request, app.web.reads) every ``read()`` uses
    one session: one connection checkout for the request's reads instead of one
    (and a BEGIN, on SQLite none at all: see _sqlite_begin) per query. Each is
    several thread hops on aiosqlite, the cost that dominated a page. A ``write()``
    ends the shared session first, so a request never holds one connection while it
    waits for another (with the pool full, that would wait on itself), and its later
    reads see what it wrote.
    """

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._shared_reader = async_sessionmaker(
            self.engine.execution_options(shared_read=True), expire_on_commit=False
        )
        self._writer = async_sessionmaker(
            self.engine.execution_options(write=True), expire_on_commit=False
        )
        # SQLite's synchronous writer (run_write), made at its first use.
        self._sqlite = settings.is_sqlite
        self._settings = settings
        self._write_engine: Engine | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        # SQLite's synchronous readers (run_read), likewise.
        self._sync_reader: sessionmaker[Session] | None = None
        self._read_threads: ThreadPoolExecutor | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        shared = _shared.get()
        if shared is None or not shared.owns(self):
            async with self._reader() as session:
                yield session
            return
        if shared.session is None:
            shared.session = self._shared_reader()
        try:
            yield shared.session
        except BaseException:
            await shared.end()  # a failed statement may leave the session unusable
            raise

    @asynccontextmanager
    async def shared_reads(self) -> AsyncIterator[_SharedReads]:
        """The reads in this block (this task's) share one session; see the class."""
        shared = _SharedReads(self)
        token = _shared.set(shared)
        try:
            yield shared
        finally:
            _shared.reset(token)
            await shared.end()

    async def end_shared_reads(self) -> None:
        """Give back this task's shared read session, if it holds one."""
        shared = _shared.get()
        if shared is not None and shared.owns(self):
            await shared.end()

    @asynccontextmanager
    async def unshared(self) -> AsyncIterator[None]:
        """Each read in this block uses a session of its own again, as outside
        ``shared_reads()``: for work that waits on another task's transaction."""
        await self.end_shared_reads()
        token = _shared.set(None)
        try:
            yield
        finally:
            _shared.reset(token)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on error."""
        await self.end_shared_reads()
        async with self._writer() as session, session.begin():
            yield session

    async def run_write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(conn, *args)``, synchronous, in one write transaction that commits on
        success and rolls back on error.

        On SQLite the whole transaction runs in one hop to a thread of its own, on the
        standard sqlite3 driver: through aiosqlite each statement is several hops to
        its thread, ~0.2 ms a statement against ~0.02 ms here, and the message
        writer's transaction has eight. On PostgreSQL (asyncpg, no threads) it runs
        in this task, its statements awaited as any others (run_sync).
        """
        await self.end_shared_reads()

        def call(conn: Connection) -> T:
            return fn(conn, *args, **kwargs)

        if not self._sqlite:
            async with self.write() as session:
                conn = await session.connection()
                return await conn.run_sync(call)
        if self._write_thread is None:
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_thread, self._write_now, call)

    async def run_read(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(session, *args)``, synchronous, on a read session of its own: the
        request's lookups (its session or token, the room it names), which through
        aiosqlite cost several thread hops a statement. On SQLite in one hop to a
        reader thread, as run_write; on PostgreSQL in this task (run_sync), in the
        request's shared reads if it has them. Rows come back loaded and detached.
        """

        def call(session: Session) -> T:
            return fn(session, *args, **kwargs)

        if not self._sqlite:
            async with self.read() as session:
                return await session.run_sync(call)
        if self._read_threads is None or self._sync_reader is None:
            engine = create_read_engine(self._settings)
            self._sync_reader = sessionmaker(engine, expire_on_commit=False)
            self._read_threads = ThreadPoolExecutor(
                SQLITE_READ_THREADS, thread_name_prefix="sqlite-reader"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_threads, self._read_now, call)

    def _read_now(self, call: Callable[[Session], T]) -> T:
        assert self._sync_reader is not None
        with self._sync_reader() as session:
            return call(session)

    def _write_now(self, call: Callable[[Connection], T]) -> T:
        with self.write_engine.begin() as conn:
            return call(conn)

    @property
    def write_engine(self) -> Engine:
        """The engine run_write's statements go through (for its events)."""
        if not self._sqlite:
            return self.engine.sync_engine
        if self._write_engine is None:
            self._write_engine = create_write_engine(self._settings)
        return self._write_engine

    async def ping(self) -> bool:
        try:
            async with self.read() as session:
                await session.execute(_SELECT_1)
            return True
        except Exception:
            return False

    async def close(self) -> None:
        if self._write_thread is not None:
            if self._write_engine is not None:  # its connection closes in its own thread
                await asyncio.get_running_loop().run_in_executor(
                    self._write_thread, self._write_engine.dispose
                )
            self._write_thread.shutdown()
            self._write_thread = None
        if self._read_threads is not None and self._sync_reader is not None:
            self._read_threads.shutdown()
            self._read_threads = None
            bind = self._sync_reader.kw["bind"]
            self._sync_reader = None
            bind.dispose()
        await self.engine.dispose()


def alembic_config(settings: Settings) -> Any:
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.attributes["settings"] = settings
    config.attributes["skip_logging"] = True
    return config


def upgrade_database(settings: Settings) -> None:
    """Apply pending migrations (``alembic upgrade head``). Call outside an event loop."""
    from alembic import command

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), "head")
