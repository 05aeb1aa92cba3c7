"""Search over a long history (issue 14): p50/p95 of one search for common words,
rare words and prefixes, and how long `talkroom reindex` takes.

Target: p95 ≤ 50 ms with 1M messages over 100 rooms. This times
app.search.find.search, the query GET /api/search runs (access scoping and
snippets included; the rest of the request is the same as any API call), on a
database seeded here with Zipf-distributed words (10 in 100 rooms private, the
searcher a member of half of those):

    .venv/bin/python bench/search.py --messages 1000000
    .venv/bin/python bench/search.py --messages 1000000 \
        --database postgresql+asyncpg://postgres:postgres@127.0.0.1/talkroom_bench_search

The messages are written straight into the database (not through the writer),
then the index is built: on SQLite by `reindex` itself (the figure reported), on
PostgreSQL by CREATE INDEX after the copy, then rebuilt once by `reindex`.

Seeding 1M messages takes minutes: `--reuse` searches a database this script
seeded before (same --messages and --rooms), after applying any newer migration
(their time is printed: that is how long they take on a big table), and
`--no-reindex` skips the rebuild.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text

from app.db import Database, upgrade_database
from app.models import Room, RoomMember, User
from app.search import create_index
from app.search.find import search
from app.search.reindex import reindex
from app.settings import Settings

VOCABULARY = 50_000
SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]
CHUNK = 50_000
# Migration 0022's index on the stored tsvector (COPY fills the generated column).
NEW_INDEX = "CREATE INDEX ix_messages_search ON messages USING gin (search_document)"


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))))
    ranked = sorted(words)  # not the set's order, which changes with PYTHONHASHSEED
    rng.shuffle(ranked)
    return ranked  # rank = position


def texts(rng: random.Random, words: list[str], count: int):
    weights = list(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))
    for _ in range(count):
        yield " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(4, 16)))


async def seed_rooms(db: Database, rooms: int) -> tuple[int, int, list[int]]:
    now = datetime.now(UTC)
    async with db.write() as session:
        conn = await session.connection()
        users = [
            {"username": n, "username_key": n, "password_hash": "x", "is_admin": False}
            for n in ("searcher", "writer")
        ]
        await conn.execute(insert(User.__table__), [u | {"created_at": now} for u in users])
        ids = dict((await conn.execute(text("SELECT username, id FROM users"))).all())
        await conn.execute(
            insert(Room.__table__),
            [
                {
                    "name": f"room{r}",
                    "description": "",
                    "created_at": now,
                    "last_seq": 0,
                    "kind": "private" if r >= rooms - rooms // 10 else "public",
                }
                for r in range(rooms)
            ],
        )
        room_ids = [r for (r,) in await conn.execute(select(Room.id).order_by(Room.id))]
        private = room_ids[rooms - rooms // 10 :]
        members = [{"room_id": r, "user_id": ids["writer"], "added_at": now} for r in private]
        members += [
            {"room_id": r, "user_id": ids["searcher"], "added_at": now}
            for r in private[: len(private) // 2]
        ]
        await conn.execute(insert(RoomMember.__table__), members)
    return ids["searcher"], ids["writer"], room_ids


def rows(room_ids: list[int], writer: int, bodies, count: int):
    start = datetime.now(UTC) - timedelta(seconds=count)
    for n, body in enumerate(bodies):
        room = room_ids[n % len(room_ids)]
        yield room, writer, n // len(room_ids) + 1, body, start + timedelta(seconds=n)


def seed_sqlite(path: Path, room_ids: list[int], writer: int, bodies, count: int) -> None:
    with sqlite3.connect(path) as db:
        batch = []
        for room, author, seq, body, when in rows(room_ids, writer, bodies, count):
            stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f")
            batch.append((room, author, seq, seq, body, stamp, ""))
            if len(batch) == CHUNK:
                _sqlite_insert(db, batch)
                batch = []
        _sqlite_insert(db, batch)
        db.execute(
            "UPDATE rooms SET last_seq = (SELECT max(seq) FROM messages WHERE room_id = rooms.id)"
        )


def _sqlite_insert(db: sqlite3.Connection, batch: list[tuple]) -> None:
    db.executemany(
        "INSERT INTO messages (room_id, author_id, seq, rev, text, created_at, mentions) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        batch,
    )


async def seed_postgres(url: str, room_ids: list[int], writer: int, bodies, count: int) -> float:
    """Copies the messages in without the index, then builds it: its seconds."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("DROP INDEX IF EXISTS ix_messages_search")
        batch = []
        for room, author, seq, body, when in rows(room_ids, writer, bodies, count):
            batch.append((room, author, seq, seq, body, when, ""))
            if len(batch) == CHUNK:
                await _pg_copy(conn, batch)
                batch = []
        await _pg_copy(conn, batch)
        await conn.execute(
            "UPDATE rooms SET last_seq = (SELECT max(seq) FROM messages WHERE room_id = rooms.id)"
        )
        began = time.perf_counter()
        await conn.execute(NEW_INDEX)
        built = time.perf_counter() - began
        await conn.execute("ANALYZE")
        return built
    finally:
        await conn.close()


async def _pg_copy(conn, batch: list[tuple]) -> None:
    await conn.copy_records_to_table(
        "messages",
        records=batch,
        columns=["room_id", "author_id", "seq", "rev", "text", "created_at", "mentions"],
    )


def queries(words: list[str], rng: random.Random) -> dict[str, list[str]]:
    return {
        "common word (ranks 1-10)": words[:10],
        "two common words": [f"{words[i]} {words[i + 1]}" for i in range(0, 20, 2)],
        "mid word (ranks 1000-1010)": words[1000:1010],
        "rare word (ranks 49990-50000)": words[-10:],
        "prefix, 3 letters": [w[:3] for w in words[100:110]],
        "prefix, 5 letters of a rare word": [w[:5] for w in words[-20:-10]],
        "phrase of two common words": [f'"{words[0]} {words[1]}"'],
        "nowhere": ["qqqxxyy"],
        "rare word and common word": [f"{words[i]} {w}" for i, w in enumerate(words[-10:])],
    }


async def run(args: argparse.Namespace, settings: Settings) -> None:
    rng = random.Random(14)
    words = vocabulary(rng)
    db = Database(settings)
    if args.reuse:
        async with db.read() as session:
            searcher_id = await session.scalar(select(User.id).where(User.username == "searcher"))
        assert searcher_id is not None, "--reuse needs a database this script seeded"
    else:
        searcher_id = await seed(args, settings, db, rng, words)
    if not args.no_reindex:
        await timed_reindex(args, db)
    index = create_index(settings.database)
    async with db.read() as session:
        searcher = await session.get(User, searcher_id)
    assert searcher is not None
    print(f"{'query':<34} {'hits':>5} {'p50 ms':>8} {'p95 ms':>8}")
    for label, qs in queries(words, rng).items():
        times, found = [], 0
        for _ in range(args.repeat):
            for q in qs:
                start = time.perf_counter()
                hits = await search(db, index, searcher, q, limit=50)
                times.append((time.perf_counter() - start) * 1000)
                found = max(found, len(hits))
        times.sort()
        p95 = times[max(int(len(times) * 0.95) - 1, 0)]
        print(f"{label:<34} {found:>5} {statistics.median(times):>8.2f} {p95:>8.2f}")
    await db.close()


async def seed(
    args: argparse.Namespace, settings: Settings, db: Database, rng: random.Random, words
) -> int:
    """Rooms, users and messages; the searcher's id."""
    searcher_id, writer, room_ids = await seed_rooms(db, args.rooms)
    began = time.perf_counter()
    bodies = texts(rng, words, args.messages)
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if settings.is_sqlite:
        path = settings.data_dir.resolve() / "talkroom.db"
        await asyncio.to_thread(seed_sqlite, path, room_ids, writer, bodies, args.messages)
        built = None
    else:
        built = await seed_postgres(settings.database, room_ids, writer, bodies, args.messages)
    print(
        f"seeded {args.messages:,} messages in {args.rooms} rooms ({kind}) in "
        f"{time.perf_counter() - began:.1f} s"
    )
    if built is not None:
        print(f"CREATE INDEX after the copy: {built:.1f} s")
    return searcher_id


async def timed_reindex(args: argparse.Namespace, db: Database) -> None:
    last = [0.0]

    def progress(done: int, total: int, what: str) -> None:
        if time.perf_counter() - last[0] > 10:
            last[0] = time.perf_counter()
            print(f"  reindex {done:,}/{total:,} {what}", flush=True)

    began = time.perf_counter()
    outcome = await reindex(db, progress, batch=args.batch)
    print(f"talkroom reindex: {outcome.messages:,} messages in {time.perf_counter() - began:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database", help="a fresh database URL (default: a new SQLite file)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query list")
    parser.add_argument("--batch", type=int, default=5000, help="reindex batch (SQLite)")
    parser.add_argument("--reuse", action="store_true", help="search an already seeded database")
    parser.add_argument("--no-reindex", action="store_true", help="skip `talkroom reindex`")
    parser.add_argument("--data-dir", type=Path, help="keep the SQLite file here (for --reuse)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="talkroom-bench-search-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, database_url=args.database)
    began = time.perf_counter()
    upgrade_database(settings)  # runs its own event loop
    print(f"migrations applied in {time.perf_counter() - began:.1f} s")
    asyncio.run(run(args, settings))


if __name__ == "__main__":
    main()
