"""Unread counts for one user in many rooms over a long history (issue 12).

Target: one `GET /api/rooms`'s counts for a user in 100 rooms with 1M messages
in 10 ms or less. This times app.unread.counts, the query that request runs
(the rest of the request is the same as before), on a database seeded here:

    .venv/bin/python bench/unread.py --rooms 100 --messages 1000000
    .venv/bin/python bench/unread.py --messages 100000 \
        --database postgresql+asyncpg://postgres@127.0.0.1/talkroom_bench_unread

Three read states are timed: the user has read everything (the usual case),
is 10 behind in every room, and is far behind in every room (each count stops
at app.unread.CAP rows: the worst case). One in 50 messages mentions the user.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text

from app import unread
from app.db import Database, upgrade_database
from app.models import Message, MessageMention, ReadPosition, Room, User
from app.settings import Settings

CHUNK = 5000


async def seed(db: Database, rooms: int, messages: int) -> int:
    """Rooms, two users and ``messages`` spread evenly; the reader's id."""
    per_room = messages // rooms
    now = datetime.now(UTC)
    async with db.write() as session:
        conn = await session.connection()
        for table in ("message_mentions", "read_positions", "messages", "rooms", "users"):
            await conn.execute(text(f"DELETE FROM {table}"))
        users = [
            {"username": n, "username_key": n, "password_hash": "x", "is_admin": False}
            for n in ("reader", "writer")
        ]
        await conn.execute(insert(User.__table__), [u | {"created_at": now} for u in users])
        ids = dict((await conn.execute(text("SELECT username, id FROM users"))).all())
        reader, writer = ids["reader"], ids["writer"]
        await conn.execute(
            insert(Room.__table__),
            [
                {"name": f"room{r}", "description": "", "created_at": now, "last_seq": per_room}
                for r in range(rooms)
            ],
        )
        room_ids = [row[0] for row in await conn.execute(text("SELECT id FROM rooms ORDER BY id"))]
    rows = [(room, seq) for room in room_ids for seq in range(1, per_room + 1)]
    for start in range(0, len(rows), CHUNK):
        async with db.write() as session:
            conn = await session.connection()
            chunk = rows[start : start + CHUNK]
            await conn.execute(
                insert(Message.__table__),
                [
                    {
                        "room_id": room,
                        "author_id": writer,
                        "seq": seq,
                        "text": f"message {seq}",
                        "created_at": now,
                        "mentions": "reader" if seq % 50 == 0 else "",
                    }
                    for room, seq in chunk
                ],
            )
            mentioned = await conn.execute(
                text(
                    "SELECT id, room_id, seq FROM messages WHERE mentions <> '' "
                    "AND room_id = :r AND seq BETWEEN :a AND :b"
                ),
                {"r": chunk[0][0], "a": chunk[0][1], "b": chunk[-1][1]},
            )
            found = [
                {"message_id": m, "user_id": reader, "room_id": r, "seq": s}
                for m, r, s in mentioned
            ]
            if found:
                await conn.execute(insert(MessageMention.__table__), found)
        if start % (CHUNK * 40) == 0:
            print(f"  seeded {start + len(chunk):,} of {len(rows):,}", flush=True)
    return reader


async def set_read(db: Database, user_id: int, behind: int, per_room: int) -> None:
    async with db.write() as session:
        conn = await session.connection()
        await conn.execute(text("DELETE FROM read_positions"))
        room_ids = [row[0] for row in await conn.execute(text("SELECT id FROM rooms"))]
        await conn.execute(
            insert(ReadPosition.__table__),
            [
                {"user_id": user_id, "room_id": r, "seq": max(per_room - behind, 0)}
                for r in room_ids
            ],
        )


async def run(args: argparse.Namespace, settings: Settings) -> None:
    db = Database(settings)
    began = time.perf_counter()
    reader = await seed(db, args.rooms, args.messages)
    print(
        f"seeded {args.messages:,} messages in {args.rooms} rooms in "
        f"{time.perf_counter() - began:.1f} s ({settings.database.partition(':')[0]})"
    )
    per_room = args.messages // args.rooms
    for label, behind in [("all read", 0), ("10 behind", 10), ("far behind", per_room)]:
        await set_read(db, reader, behind, per_room)
        got = await unread.counts(db, reader)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            await unread.counts(db, reader)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        total = sum(c.unread for c in got.values())
        p99 = times[max(int(len(times) * 0.99) - 1, 0)]
        print(
            f"{label:>10}: unread {total:,} over {len(got)} rooms; "
            f"median {statistics.median(times):.2f} ms, p99 {p99:.2f} ms"
        )
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="talkroom-bench-unread-"))
    settings = Settings(data_dir=data_dir, database_url=args.database)
    upgrade_database(settings)  # runs its own event loop
    asyncio.run(run(args, settings))


if __name__ == "__main__":
    main()
