"""PostgreSQL's search in two steps (app.search.postgres): walking the newest
messages, then asking the GIN index for older ones. With a small window every
path runs, and each page must be exactly what a walk of everything finds."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from sqlalchemy import insert, select
from support import postgres_url

from app.db import Database, upgrade_database
from app.models import Message, Room, RoomMember, User, utcnow
from app.search.find import search
from app.search.postgres import PostgresIndex
from app.settings import Settings

WORDS = ["common", "often", "sometimes", "rare", "café", "naïve", "x_y"]


async def seed(db: Database) -> tuple[User, User]:
    """400 messages in a public and a private room; ``outsider`` is not in the
    private one. Word i is in roughly 1 message in 2**i."""
    rng = random.Random(22)
    async with db.write() as session:
        conn = await session.connection()
        now = utcnow()
        for name in ("reader", "outsider"):
            await conn.execute(
                insert(User.__table__).values(
                    username=name, username_key=name, password_hash="x", created_at=now
                )
            )
        for name, kind in (("open", "public"), ("closed", "private")):
            await conn.execute(
                insert(Room.__table__).values(
                    name=name, description="", kind=kind, last_seq=0, created_at=now
                )
            )
        reader, outsider = (await conn.execute(select(User.id).order_by(User.id))).scalars()
        public, private = (await conn.execute(select(Room.id).order_by(Room.id))).scalars()
        await conn.execute(
            insert(RoomMember.__table__).values(room_id=private, user_id=reader, added_at=now)
        )
        rows = []
        for n in range(400):
            words = [w for i, w in enumerate(WORDS) if rng.random() < 0.6 / 2**i] or ["filler"]
            rows.append(
                {
                    "room_id": private if n % 5 == 0 else public,
                    "author_id": reader,
                    "seq": n + 1,
                    "rev": n + 1,
                    "text": " ".join(words),
                    "created_at": now,
                    "mentions": "",
                }
            )
        await conn.execute(insert(Message.__table__), rows)
    async with db.read() as session:
        users = (await session.scalars(select(User).order_by(User.id))).all()
    return users[0], users[1]


async def pages(db: Database, index: PostgresIndex, user: User, q: str) -> list[list[int]]:
    """Every page of 7 hits, following ``before``."""
    found: list[list[int]] = []
    before = None
    while True:
        hits = await search(db, index, user, q, before=before, limit=7)
        if not hits:
            return found
        found.append([h.message_id for h in hits])
        before = hits[-1].message_id


def test_the_window_and_the_index_find_what_walking_everything_finds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url("talkroom_pgsearch"))
    upgrade_database(settings)

    async def check() -> None:
        db = Database(settings)
        try:
            reader, outsider = await seed(db)
            walk_all = PostgresIndex(window=10**9)
            queries = ["common", "often", "sometimes", "rare", "CAFE", "naive", "x_y", "som"]
            queries += ["common often", "often rare", '"common often"', "nowhere", "ra"]
            for q in queries:
                for user in (reader, outsider):
                    expected = await pages(db, walk_all, user, q)
                    for window in (1, 3, 10, 60):
                        got = await pages(db, PostgresIndex(window=window), user, q)
                        assert got == expected, (q, user.username, window)
            # Sanity: the paths do different work, and the words are spread.
            counts = [sum(map(len, await pages(db, walk_all, reader, w))) for w in WORDS]
            assert counts[0] > 150 and 0 < counts[3] < 40, counts
            everything = sum(map(len, await pages(db, walk_all, reader, "common")))
            hidden = sum(map(len, await pages(db, walk_all, outsider, "common")))
            assert 0 < hidden < everything  # the private room's hits are not the outsider's
        finally:
            await db.close()

    asyncio.run(check())
