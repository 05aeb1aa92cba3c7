"""`alembic upgrade head` on an empty database gives exactly the models' schema."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from support import postgres_url

from app.db import create_engine, upgrade_database
from app.models import Base
from app.search import not_search_index
from app.settings import Settings


async def schema_diff(settings: Settings) -> list[object]:
    engine = create_engine(settings)

    def diff(connection: object) -> list[object]:
        # The search index's structures (app.search) are not mapped tables.
        opts = {"compare_type": True, "include_name": not_search_index}
        context = MigrationContext.configure(connection, opts=opts)  # type: ignore[arg-type]
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        result = await connection.run_sync(diff)
    await engine.dispose()
    return result


def test_sqlite_upgrade_matches_models(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade_database(settings)
    assert asyncio.run(schema_diff(settings)) == []
    upgrade_database(settings)  # a second run is a no-op


def test_postgres_upgrade_matches_models(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    upgrade_database(settings)
    assert asyncio.run(schema_diff(settings)) == []


def test_cli_refuses_a_bad_database_url_without_a_traceback(tmp_path: Path) -> None:
    from support import Server, server_env

    srv = Server(0, server_env(tmp_path, database_url="mysql://nope"), tmp_path / "log")
    result = srv.cli("migrate", check=False)
    assert result.returncode == 1
    assert "TALKROOM_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_without_redis_are_refused(tmp_path: Path) -> None:
    from support import Server, server_env

    srv = Server(0, server_env(tmp_path), tmp_path / "log")
    result = srv.cli("serve", "--workers", "2", check=False)
    assert result.returncode == 1
    assert "TALKROOM_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("env", ["production"])
def test_production_without_a_secret_refuses_to_start(tmp_path: Path, env: str) -> None:
    from support import Server, server_env

    srv = Server(0, server_env(tmp_path, env=env), tmp_path / "log")
    result = srv.cli("migrate", check=False)
    assert result.returncode == 1
    assert "TALKROOM_SECRET_KEY" in result.stderr


def _carry_messages(settings: Settings) -> list[object]:
    """Migrate a database holding a Part 1 message to head; what the message became."""
    from alembic import command
    from sqlalchemy import text

    from app.db import alembic_config

    command.upgrade(alembic_config(settings), "0002")

    async def run(*statements: str) -> list[object]:
        engine = create_engine(settings)
        async with engine.begin() as conn:
            rows: list[object] = []
            for statement in statements:
                result = await conn.execute(text(statement))
                rows = list(result.all()) if result.returns_rows else rows
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO rooms (id, name, description, created_at, last_seq)"
            " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 1)",
            "INSERT INTO messages (room_id, author_id, seq, text, created_at)"
            " VALUES (1, 1, 1, 'hi @old', CURRENT_TIMESTAMP)",
        )
    )
    upgrade_database(settings)
    return asyncio.run(
        run(
            "SELECT m.text, m.mentions, (SELECT count(*) FROM message_mentions),"
            " (SELECT count(*) FROM read_positions) FROM messages m"
        )
    )


def test_sqlite_migration_keeps_messages_mentioning_nobody(tmp_path: Path) -> None:
    # Saved before mentions existed: kept as they were, with no mentions and nothing unread.
    assert _carry_messages(Settings(data_dir=tmp_path)) == [("hi @old", "", 0, 0)]


def test_postgres_migration_keeps_messages_mentioning_nobody(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig6_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _carry_messages(settings) == [("hi @old", "", 0, 0)]


def _carry_to_revisions(settings: Settings) -> list[object]:
    """Migrate a database at 0007 holding messages (one mentioning someone) to head;
    what the messages, their mention and the search index became."""
    from alembic import command
    from sqlalchemy import text

    from app.db import alembic_config

    command.upgrade(alembic_config(settings), "0007")

    async def run(*statements: str) -> list[object]:
        engine = create_engine(settings)
        async with engine.begin() as conn:
            rows: list[object] = []
            for statement in statements:
                result = await conn.execute(text(statement))
                rows = list(result.all()) if result.returns_rows else rows
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO rooms (id, name, description, created_at, last_seq)"
            " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 2)",
            "INSERT INTO messages (id, room_id, author_id, seq, text, created_at, mentions)"
            " VALUES (1, 1, 1, 1, 'first words', CURRENT_TIMESTAMP, ''),"
            " (2, 1, 1, 2, 'hi @old', CURRENT_TIMESTAMP, 'old')",
            "INSERT INTO message_mentions (message_id, user_id, room_id, seq) VALUES (2, 1, 1, 2)",
        )
    )
    if settings.is_sqlite:  # rows inserted by hand: index them as the writer would
        asyncio.run(run("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')"))
    upgrade_database(settings)
    search = (
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'first'"
        if settings.is_sqlite
        else "SELECT id FROM messages WHERE to_tsvector('simple', text) @@ 'first'::tsquery"
    )
    return asyncio.run(
        run(
            "SELECT m.id, m.seq, m.rev, m.edited_at, m.deleted_at, m.text,"
            " (SELECT count(*) FROM message_mentions) FROM messages m ORDER BY m.id"
        )
    ) + asyncio.run(run(search))


CARRIED = [
    (1, 1, 1, None, None, "first words", 1),
    (2, 2, 2, None, None, "hi @old", 1),
    (1,),
]


def test_sqlite_migration_gives_existing_messages_their_seq_as_rev(tmp_path: Path) -> None:
    # Each is as it was created; mentions and the search index survive the migration.
    assert _carry_to_revisions(Settings(data_dir=tmp_path)) == CARRIED


def test_postgres_migration_gives_existing_messages_their_seq_as_rev(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig8_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _carry_to_revisions(settings) == CARRIED
