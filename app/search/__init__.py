"""Full-text search: one index protocol, chosen from the database URL."""

from __future__ import annotations

from sqlalchemy.engine import URL

from app.search.base import SearchIndex
from app.search.postgres import PostgresIndex
from app.search.sqlite import SqliteIndex


def create_index(url: URL | str) -> SearchIndex:
    """The index for this database, as backends are chosen from settings."""
    name = url if isinstance(url, str) else url.drivername
    if name.startswith("sqlite"):
        return SqliteIndex()
    return PostgresIndex()


def not_search_index(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's include_name: the index's tables (FTS5's shadow tables too) and
    index are made by migration 0007, not mapped in app.models."""
    return not (name or "").startswith(("messages_fts", "ix_messages_search"))


__all__ = ["PostgresIndex", "SearchIndex", "SqliteIndex", "create_index", "not_search_index"]
