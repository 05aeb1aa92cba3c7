"""`alembic upgrade head` on an empty database gives exactly the models' schema."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from support import postgres_url

from app.db import create_engine, upgrade_database
from app.models import Base
from app.search import not_search_index
from app.settings import Settings


async def _execute(settings: Settings, *statements: str) -> list[object]:
    """Run ``statements`` in one transaction on ``settings``' database; the last
    one's rows (a migration test's setup and its checks)."""
    from sqlalchemy import text

    engine = create_engine(settings)
    async with engine.begin() as conn:
        rows: list[object] = []
        for statement in statements:
            result = await conn.execute(text(statement))
            rows = list(result.all()) if result.returns_rows else rows
    await engine.dispose()
    return rows


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

    from app.db import alembic_config

    command.upgrade(alembic_config(settings), "0002")

    run = partial(_execute, settings)

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
            " (SELECT count(*) FROM read_positions),"
            # Users from before bots are people; no delivery is owed for old messages.
            " (SELECT is_bot FROM users WHERE id = 1), (SELECT count(*) FROM webhook_deliveries)"
            " FROM messages m"
        )
    )


def test_sqlite_migration_keeps_messages_mentioning_nobody(tmp_path: Path) -> None:
    # Saved before mentions existed: kept as they were, with no mentions and nothing unread.
    assert _carry_messages(Settings(data_dir=tmp_path)) == [("hi @old", "", 0, 0, False, 0)]


def test_postgres_migration_keeps_messages_mentioning_nobody(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig6_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _carry_messages(settings) == [("hi @old", "", 0, 0, False, 0)]


def _search_after_migration(settings: Settings) -> list[list[int]]:
    """Migrate a database holding a Part 1 message (no index yet) to head; which
    message ids a search finds for a few queries afterwards."""
    from alembic import command
    from sqlalchemy import text

    from app.db import Database, alembic_config
    from app.models import User
    from app.search import create_index
    from app.search.find import search

    command.upgrade(alembic_config(settings), "0002")

    async def seed() -> None:
        engine = create_engine(settings)
        async with engine.begin() as conn:
            for statement in (
                "INSERT INTO users (id, username, username_key, password_hash, is_admin,"
                " created_at) VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP)",
                "INSERT INTO rooms (id, name, description, created_at, last_seq)"
                " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 1)",
                "INSERT INTO messages (room_id, author_id, seq, text, created_at)"
                " VALUES (1, 1, 1, 'Crème brûlée at the Café', CURRENT_TIMESTAMP)",
            ):
                await conn.execute(text(statement))
        await engine.dispose()

    async def find() -> list[list[int]]:
        db = Database(settings)
        try:
            async with db.read() as session:
                user = await session.get(User, 1)
            assert user is not None
            index = create_index(settings.database)
            queries = ("creme", "CAFÉ brul", "caf", '"brulee at"', "nothing")
            return [[h.message_id for h in await search(db, index, user, q)] for q in queries]
        finally:
            await db.close()

    asyncio.run(seed())
    upgrade_database(settings)
    return asyncio.run(find())


def test_sqlite_migration_indexes_existing_messages_for_search(tmp_path: Path) -> None:
    assert _search_after_migration(Settings(data_dir=tmp_path)) == [[1], [1], [1], [1], []]


def test_postgres_migration_indexes_existing_messages_for_search(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig8_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _search_after_migration(settings) == [[1], [1], [1], [1], []]


def _add_invitations(settings: Settings) -> list[object]:
    """Migrate a database with an account from 0014 to head and back: 0015 adds the
    empty invitations table beside the data, and its downgrade removes only that."""
    from alembic import command
    from sqlalchemy import text

    from app.db import alembic_config

    config = alembic_config(settings)
    command.upgrade(config, "0014")

    async def run(statement: str) -> list[object]:
        engine = create_engine(settings)
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            rows = list(result.all()) if result.returns_rows else []
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', true, CURRENT_TIMESTAMP)"
        )
    )
    upgrade_database(settings)
    found = asyncio.run(
        run("SELECT (SELECT count(*) FROM invitations), (SELECT username FROM users)")
    )
    command.downgrade(config, "0014")
    after = asyncio.run(run("SELECT username FROM users"))
    upgrade_database(settings)
    return [*found, *after]


def test_sqlite_migration_0015_adds_invitations_beside_existing_data(tmp_path: Path) -> None:
    assert _add_invitations(Settings(data_dir=tmp_path)) == [(0, "old"), ("old",)]


def test_postgres_migration_0015_adds_invitations_beside_existing_data(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig8_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _add_invitations(settings) == [(0, "old"), ("old",)]


def _format_existing_messages(settings: Settings) -> dict[str, object]:
    """A database with a message saved before formatting, migrated to head: its html
    stays NULL and it is rendered from its text when read; down and up again keep
    it and its search index."""
    from alembic import command
    from sqlalchemy import text

    from app.db import Database, alembic_config
    from app.windows import Windows

    config = alembic_config(settings)
    command.upgrade(config, "0015")
    source = "**old** `code` <b>x</b> https://example.com"

    async def run(*statements: str) -> list[object]:
        engine = create_engine(settings)
        async with engine.begin() as conn:
            rows: list[object] = []
            for statement in statements:
                result = await conn.execute(text(statement), {"t": source})
                rows = list(result.all()) if result.returns_rows else rows
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO rooms (id, name, description, created_at, last_seq, kind)"
            " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 1, 'public')",
            "INSERT INTO messages (room_id, author_id, seq, text, created_at, mentions)"
            " VALUES (1, 1, 1, :t, CURRENT_TIMESTAMP, '')",
        )
    )
    if settings.database_url is None:  # as the writer does (app.search.sqlite)
        asyncio.run(run("INSERT INTO messages_fts(rowid, text) SELECT id, text FROM messages"))
    upgrade_database(settings)
    found: dict[str, object] = {"row": asyncio.run(run("SELECT text, html FROM messages"))}

    async def window() -> str:
        db = Database(settings)
        try:
            (view,) = await Windows(settings=settings, db=db).window(1)
            return str(render.text_html(view))
        finally:
            await db.close()

    from app import render

    found["shown"] = asyncio.run(window())
    command.downgrade(config, "0015")
    found["down"] = asyncio.run(run("SELECT * FROM messages"))
    if settings.database_url is None:  # the FTS5 triggers survived the column's drop
        found["index"] = asyncio.run(
            run(
                "SELECT (SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'code'),"
                " (SELECT count(*) FROM sqlite_master WHERE name = 'messages_fts_forget')"
            )
        )
    upgrade_database(settings)
    found["up"] = asyncio.run(run("SELECT count(*), count(html) FROM messages"))
    return found


def _check_formatted(found: dict[str, object]) -> None:
    assert found["row"] == [("**old** `code` <b>x</b> https://example.com", None)]
    assert found["shown"] == (
        "<p><strong>old</strong> <code>code</code> &lt;b&gt;x&lt;/b&gt; "
        '<a href="https://example.com" target="_blank" rel="nofollow noopener noreferrer">'
        "https://example.com</a></p>"
    )
    (down,) = found["down"]  # type: ignore[misc]
    assert "html" not in down._fields  # type: ignore[attr-defined]
    assert found["up"] == [(1, 0)]


def test_sqlite_migration_leaves_old_messages_to_render_from_text(tmp_path: Path) -> None:
    found = _format_existing_messages(Settings(data_dir=tmp_path))
    _check_formatted(found)
    assert found["index"] == [(1, 1)]


def test_postgres_migration_leaves_old_messages_to_render_from_text(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig8_{tmp_path.name[-8:].replace('-', '_')}")
    _check_formatted(_format_existing_messages(Settings(data_dir=tmp_path, database_url=url)))


def _carry_to_revisions(settings: Settings) -> list[object]:
    """Migrate a database at 0007 holding messages (one mentioning someone) to head;
    what the messages, their mention and the search index became."""
    from alembic import command

    from app.db import alembic_config

    command.upgrade(alembic_config(settings), "0007")

    run = partial(_execute, settings)

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


def _attachments_beside_messages(settings: Settings) -> list[object]:
    """0019 with a message, up to head (0020: attachments), an attachment of that
    message, then down to 0019 and up again: what the messages and attachments are."""
    from alembic import command

    from app.db import alembic_config

    config = alembic_config(settings)
    command.upgrade(config, "0019")

    run = partial(_execute, settings)

    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO rooms (id, name, description, created_at, last_seq)"
            " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 1)",
            "INSERT INTO messages (id, room_id, author_id, seq, rev, text, created_at, mentions)"
            " VALUES (1, 1, 1, 1, 1, 'kept', CURRENT_TIMESTAMP, '')",
        )
    )
    upgrade_database(settings)
    attached = asyncio.run(
        run(
            "INSERT INTO attachments (id, message_id, room_id, position, name, size,"
            " content_type, created_at) VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 1, 1, 0, 'a.txt',"
            " 5, 'application/octet-stream', CURRENT_TIMESTAMP)",
            "SELECT m.text, a.name FROM messages m JOIN attachments a ON a.message_id = m.id",
        )
    )
    command.downgrade(config, "0019")
    kept = asyncio.run(run("SELECT id, text FROM messages"))
    upgrade_database(settings)
    again = asyncio.run(run("SELECT count(*) FROM attachments"))
    return [attached, kept, again]


ATTACHED = [[("kept", "a.txt")], [(1, "kept")], [(0,)]]


def test_sqlite_migration_0020_adds_attachments_beside_existing_messages(tmp_path: Path) -> None:
    assert _attachments_beside_messages(Settings(data_dir=tmp_path)) == ATTACHED


def test_postgres_migration_0020_adds_attachments_beside_existing_messages(
    tmp_path: Path,
) -> None:
    url = postgres_url(f"talkroom_mig20_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _attachments_beside_messages(settings) == ATTACHED


def _faces_beside_existing_data(settings: Settings) -> list[object]:
    """A database with a user and their message at 0019, migrated to 0021 and back:
    the user gets no display name and no avatar, and the downgrade (columns dropped
    in place, not in a batch that would copy users and cascade) keeps the message."""
    from alembic import command

    from app.db import alembic_config

    config = alembic_config(settings)
    command.upgrade(config, "0019")

    run = partial(_execute, settings)

    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO rooms (id, name, description, created_at, last_seq)"
            " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 1)",
            "INSERT INTO messages (id, room_id, author_id, seq, rev, text, created_at, mentions)"
            " VALUES (1, 1, 1, 1, 1, 'kept words', CURRENT_TIMESTAMP, '')",
        )
    )
    command.upgrade(config, "0021")
    found = asyncio.run(
        run(
            "SELECT u.display_name, u.avatar_key, (SELECT count(*) FROM user_avatars),"
            " (SELECT text FROM messages) FROM users u"
        )
    )
    command.downgrade(config, "0019")
    after = asyncio.run(run("SELECT u.username, m.text FROM users u JOIN messages m ON true"))
    upgrade_database(settings)
    return [*found, *after]


FACES_CARRIED = [(None, None, 0, "kept words"), ("old", "kept words")]


def test_sqlite_migration_0021_adds_faces_beside_existing_data(tmp_path: Path) -> None:
    assert _faces_beside_existing_data(Settings(data_dir=tmp_path)) == FACES_CARRIED


def test_postgres_migration_0021_adds_faces_beside_existing_data(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig21_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _faces_beside_existing_data(settings) == FACES_CARRIED


def _messages_outlive_authors(settings: Settings) -> list[object]:
    """A database at 0022 whose messages have mentions, reactions, an attachment and
    a search index, migrated to head (0023: author_id SET NULL), a user removed by
    SQL alone, then down to 0022 and up again."""
    from alembic import command

    from app.db import alembic_config

    config = alembic_config(settings)
    command.upgrade(config, "0022")
    run = partial(_execute, settings)
    asyncio.run(
        run(
            "INSERT INTO users (id, username, username_key, password_hash, is_admin, created_at)"
            " VALUES (1, 'old', 'old', 'x', false, CURRENT_TIMESTAMP),"
            " (2, 'gone', 'gone', 'x', false, CURRENT_TIMESTAMP)",
            "INSERT INTO rooms (id, name, description, created_at, last_seq)"
            " VALUES (1, 'r', '', CURRENT_TIMESTAMP, 3)",
            "INSERT INTO messages (id, room_id, author_id, seq, rev, text, created_at, mentions)"
            " VALUES (1, 1, 1, 1, 1, 'kept words @gone', CURRENT_TIMESTAMP, 'gone'),"
            " (2, 1, 2, 2, 2, 'their words', CURRENT_TIMESTAMP, ''),"
            " (3, 1, 1, 3, 3, 'doomed words', CURRENT_TIMESTAMP, '')",
            "INSERT INTO message_mentions (message_id, user_id, room_id, seq) VALUES (1, 2, 1, 1)",
            "INSERT INTO message_reactions (message_id, user_id, emoji, created_at)"
            " VALUES (1, 1, 'x', CURRENT_TIMESTAMP)",
            "INSERT INTO attachments (id, message_id, room_id, position, name, size,"
            " content_type, created_at) VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 1, 1, 0, 'a.txt',"
            " 5, 'application/octet-stream', CURRENT_TIMESTAMP)",
        )
    )
    if settings.is_sqlite:  # rows inserted by hand: index them as the writer would
        asyncio.run(run("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')"))
    upgrade_database(settings)
    diff = asyncio.run(schema_diff(settings))
    children = (
        "SELECT (SELECT count(*) FROM message_mentions), (SELECT count(*) FROM message_reactions),"
        " (SELECT count(*) FROM attachments)"
    )
    kept = asyncio.run(run(children))
    search = (
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'words' ORDER BY rowid"
        if settings.is_sqlite
        else "SELECT id FROM messages WHERE search_document @@ 'words'::tsquery ORDER BY id"
    )
    # A row deleted behind the app's back leaves the index too (SQLite: the trigger,
    # made again after the table was copied).
    asyncio.run(run("DELETE FROM messages WHERE id = 3"))
    found = asyncio.run(run(search))
    # Removing a user keeps their messages, without an author.
    asyncio.run(run("DELETE FROM users WHERE id = 2"))
    authors = asyncio.run(run("SELECT id, author_id FROM messages ORDER BY id"))
    command.downgrade(config, "0022")
    down = asyncio.run(run("SELECT id, author_id FROM messages ORDER BY id"))
    upgrade_database(settings)
    return [diff, kept, found, authors, down, asyncio.run(schema_diff(settings))]


OUTLIVED = [
    [],
    [(1, 1, 1)],  # mentions, reactions, attachments: none lost to the table copy
    [(1,), (2,)],
    [(1, 1), (2, None)],
    [(1, 1)],  # the downgrade deletes the authorless message (0022 would have)
    [],
]


def test_sqlite_migration_0023_keeps_messages_of_removed_users(tmp_path: Path) -> None:
    assert _messages_outlive_authors(Settings(data_dir=tmp_path)) == OUTLIVED


def test_postgres_migration_0023_keeps_messages_of_removed_users(tmp_path: Path) -> None:
    url = postgres_url(f"talkroom_mig23_{tmp_path.name[-8:].replace('-', '_')}")
    settings = Settings(data_dir=tmp_path, database_url=url)
    assert _messages_outlive_authors(settings) == OUTLIVED
