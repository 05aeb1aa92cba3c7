"""A pool with no connection free in time is the database not answering, not a bug:
the handshake gets 1013 and a request 503, so clients come back later."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import unavailable


async def test_an_exhausted_pool_counts_as_unavailable(tmp_path: Path) -> None:
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    try:
        async with engine.connect():
            with pytest.raises(Exception) as caught:  # noqa: PT011 - the pool's own type is the point
                async with engine.connect():
                    pass
        assert unavailable(caught.value), type(caught.value)
    finally:
        await engine.dispose()
