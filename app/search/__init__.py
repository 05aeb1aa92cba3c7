"""Full-text search: one index protocol, chosen from the database URL."""

from __future__ import annotations

from sqlalchemy.engine import URL

from app.search import postgres
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
    """For Alembic's include_name: the index's tables (FTS5's shadow tables too),
    column and index are made by migrations 0007, 0014 and 0022, not mapped in
    app.models (each database has only its own)."""
    if type_ == "column" and name == postgres.COLUMN:
        return False
    return not (name or "").startswith(("messages_fts", "ix_messages_search"))


__all__ = ["PostgresIndex", "SearchIndex", "SqliteIndex", "create_index", "not_search_index"]
