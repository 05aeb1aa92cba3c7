"""Read positions, and the unread and mention counts they give.

A user's read position in a room is the highest seq they have seen there; it only
moves forward, and never past the room's ``last_seq``. Unread messages are those
after it that someone else wrote; unread mentions are the user's
``message_mentions`` rows after it.

Counting never walks a room's history: each count stops at CAP rows (a badge
shows "99+"), read from the ``(room_id, seq)`` index of messages and the
``(user_id, room_id, seq)`` index of mentions, so a user in 100 rooms costs at
most 100 short index walks per request, however long the rooms are.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError

from app.db import Database

# Counts stop here: a badge shows CAP - 1 and a "+".
CAP = 100

# The counts of one user in a set of rooms. The correlated sub-selects take their
# LIMIT before counting, which is what bounds them. Deleted messages (tombstones)
# are not unread; their mention rows go with the delete (app.changes).
_COUNTS = """
SELECT r.id AS room_id, coalesce(rp.seq, 0) AS read_seq,
  CASE WHEN r.last_seq > coalesce(rp.seq, 0) THEN (
    SELECT count(*) FROM (
      SELECT 1 FROM messages m
      WHERE m.room_id = r.id AND m.seq > coalesce(rp.seq, 0) AND m.author_id <> :user
        AND m.deleted_at IS NULL
      LIMIT :cap) AS unread_rows
  ) ELSE 0 END AS unread,
  CASE WHEN r.last_seq > coalesce(rp.seq, 0) THEN (
    SELECT count(*) FROM (
      SELECT 1 FROM message_mentions mm
      WHERE mm.user_id = :user AND mm.room_id = r.id AND mm.seq > coalesce(rp.seq, 0)
      LIMIT :cap) AS mention_rows
  ) ELSE 0 END AS mentions
FROM rooms r
LEFT JOIN read_positions rp ON rp.room_id = r.id AND rp.user_id = :user
"""
ALL_ROOMS = text(_COUNTS)
SOME_ROOMS = text(_COUNTS + "WHERE r.id IN :rooms").bindparams(bindparam("rooms", expanding=True))
LAST_SEQ = text("SELECT last_seq FROM rooms WHERE id = :room")
READ_SEQ = text("SELECT seq FROM read_positions WHERE user_id = :user AND room_id = :room")
MOVE = text(
    "UPDATE read_positions SET seq = :seq WHERE user_id = :user AND room_id = :room AND seq < :seq"
)
START = text("INSERT INTO read_positions (user_id, room_id, seq) VALUES (:user, :room, :seq)")


class Counts(NamedTuple):
    read_seq: int
    unread: int
    mentions: int


NONE = Counts(0, 0, 0)


async def counts(
    db: Database, user_id: int, room_ids: Collection[int] | None = None
) -> dict[int, Counts]:
    """The user's counts per room: in ``room_ids``, or in every room (None)."""
    if room_ids is not None and not room_ids:
        return {}
    async with db.read() as session:
        conn = await session.connection()
        return await conn.run_sync(_counts, user_id, room_ids)


def _counts(conn: Connection, user_id: int, room_ids: Collection[int] | None) -> dict[int, Counts]:
    """Synchronous, so a read mark's transaction can run it (Database.run_write)."""
    params: dict[str, object] = {"user": user_id, "cap": CAP}
    query = ALL_ROOMS
    if room_ids is not None:
        query, params["rooms"] = SOME_ROOMS, list(room_ids)
    rows = conn.execute(query, params)
    return {row.room_id: Counts(row.read_seq, row.unread, row.mentions) for row in rows}


async def mark_read(
    db: Database, user_id: int, room_id: int, seq: int, *, retry: bool = True
) -> Counts | None:
    """Move the user's read position in the room up to ``seq``, clamped to the room's
    last seq; never back. The counts after it when it moved, else None (nothing
    changed, or no such room)."""
    async with db.read() as session:
        conn = await session.connection()
        params = {"user": user_id, "room": room_id}
        last = (await conn.execute(LAST_SEQ, params)).scalar()
        current = (await conn.execute(READ_SEQ, params)).scalar()
    if last is None:
        return None
    target = max(0, min(seq, last))
    if current is not None and target <= current:
        return None  # the common case, a read already recorded: no write at all
    try:
        # In the writer's thread on SQLite (run_write): through aiosqlite this write
        # would hold the database's one write lock across event-loop turns.
        return await db.run_write(_move, user_id, room_id, target, start=current is None)
    except IntegrityError:
        # Another tab started the position at the same moment: move that one.
        if not retry:
            raise
        return await mark_read(db, user_id, room_id, seq, retry=False)


def _move(conn: Connection, user_id: int, room_id: int, seq: int, *, start: bool) -> Counts | None:
    params = {"user": user_id, "room": room_id, "seq": seq}
    if start:
        conn.execute(START, params)
    elif not conn.execute(MOVE, params).rowcount:
        return None  # another tab's read went further meanwhile
    return _counts(conn, user_id, [room_id]).get(room_id)


async def mentioned_counts(
    db: Database, room_id: int, user_ids: Collection[int]
) -> dict[int, Counts]:
    """Each user's counts in one room (after a message mentioned them)."""
    out: dict[int, Counts] = {}
    async with db.read() as session:
        conn = await session.connection()
        for user_id in user_ids:
            found = await conn.run_sync(_counts, user_id, [room_id])
            if room_id in found:
                out[user_id] = found[room_id]
    return out
