"""The async engine and sessions.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and then
writes can fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT), which
no busy timeout helps with. Taking the write lock up front makes writers wait
their turn instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
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
    mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(settings.database, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(settings.database, pool_size=10, max_overflow=20, pool_pre_ping=True)


def unavailable(exc: BaseException) -> bool:
    """The database is down or unreachable, as opposed to a bug in a query: the
    user is told to try again (503, or an error frame) rather than shown a 500."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Database:
    """Owns the engine; hands out read sessions and write transactions."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(write=True), expire_on_commit=False
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on error."""
        async with self._writer() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.read() as session:
                await session.execute(_SELECT_1)
            return True
        except Exception:
            return False

    async def close(self) -> None:
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
