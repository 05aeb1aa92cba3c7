from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.db import Database, upgrade_database
from app.settings import Settings
from tests.support import postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str | None:
    return (
        postgres_url(f"unit_{request.node.module.__name__.rpartition('.')[2]}")
        if request.param == "postgres"
        else None
    )


@pytest.fixture
async def db(url: str | None, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database on SQLite and on PostgreSQL (modules may define their own)."""
    settings = Settings(data_dir=tmp_path, database_url=url)
    await asyncio.to_thread(upgrade_database, settings)
    db = Database(settings)
    yield db
    await db.close()
