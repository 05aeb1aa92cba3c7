"""Searching: a user's query, scoped by the one access check, answered by the index.

Access is part of the query itself (app.access.readable_rooms), so a hit in a room
the caller cannot read is never read, counted or timed apart from the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import Select, func, select

from app import access, rooms
from app.db import Database
from app.models import Message, Room, User
from app.search.base import SearchIndex
from app.search.query import Parsed, parse
from app.search.snippet import snippet

MESSAGES, ROOMS, USERS = Message.__table__, Room.__table__, User.__table__
COLUMNS = (
    MESSAGES.c.id,
    MESSAGES.c.room_id,
    ROOMS.c.name,
    ROOMS.c.kind,
    MESSAGES.c.seq,
    USERS.c.username,
    MESSAGES.c.text,
    MESSAGES.c.created_at,
)


@dataclass(frozen=True, slots=True)
class Hit:
    room_id: int
    room_name: str
    message_id: int
    seq: int
    author: str
    snippet: Markup
    created_at: datetime

    @property
    def permalink(self) -> str:
        return f"/rooms/{self.room_id}/messages/{self.seq}"


def _query(user: User, parsed: Parsed, room_id: int | None) -> Select[Any]:
    query = (
        select(*COLUMNS)
        .select_from(MESSAGES)
        .join(ROOMS, ROOMS.c.id == MESSAGES.c.room_id)
        .join(USERS, USERS.c.id == MESSAGES.c.author_id)
        .where(access.readable_rooms(user))
    )
    if room_id is not None:
        query = query.where(MESSAGES.c.room_id == room_id)
    if parsed.author is not None:
        query = query.where(USERS.c.username_key == parsed.author.casefold())
    if parsed.room is not None:
        query = query.where(func.lower(ROOMS.c.name) == parsed.room.removeprefix("#").lower())
    return query


async def search(
    db: Database,
    index: SearchIndex,
    user: User,
    text: str,
    *,
    room_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Hit]:
    """Newest first: the messages matching ``text`` in rooms ``user`` can read, with
    ids below ``before``. Only filters (``from:bob``) list their newest messages;
    nothing to look for finds nothing."""
    parsed = parse(text.replace("\x00", " "))  # PostgreSQL refuses NUL in any string
    if parsed.empty and parsed.author is None and parsed.room is None:
        return []
    query = _query(user, parsed, room_id)
    async with db.read() as session:
        if parsed.empty:
            query = query.order_by(MESSAGES.c.id.desc()).limit(limit)
            if before is not None:
                query = query.where(MESSAGES.c.id < before)
            rows = (await session.execute(query)).all()
        else:
            await index.expand(session, parsed)
            rows = await index.find(session, query, parsed, before, limit)
    directs = [Room(id=row.room_id) for row in rows if row.kind == access.DIRECT]
    names = await rooms.direct_names(db, directs, user)
    return [
        Hit(
            room_id=row.room_id,
            room_name=names.get(row.room_id, row.name),
            message_id=row.id,
            seq=row.seq,
            author=row.username,
            snippet=snippet(row.text, parsed),
            created_at=row.created_at,
        )
        for row in rows
    ]
