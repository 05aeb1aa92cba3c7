"""Who may read which room, and who may keep a socket open.

One rule, asked everywhere a room is reached (pages, fragments, the API, the
WebSocket, the lobby, presence, history, mentions): a room can be read when it is
public or the user is one of its members. ``readable_rooms(user)`` states it as a
filter on Room for list queries; ``can_read`` (one room) and ``readable_room``
(one room, loaded) are that same filter. To anyone else a private room or a DM
does not exist: callers answer exactly as for an unknown id.

Sockets are checked again after the handshake.

A socket checks its session once, at the handshake. A logout, a removed user or a
deleted room closes the sockets concerned through a close event to every worker
(app.announce), but pub/sub may lose it. So every few seconds each process also
checks its own sockets against the database and closes, with 1008, those whose
session or room is gone: a lost close event costs seconds, not an open socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm import Session as OrmSession
from starlette.status import WS_1008_POLICY_VIOLATION

from app import metrics
from app.connection import Connection
from app.db import Database, unavailable
from app.hub import LOBBY_ROOM, Hub
from app.models import MAX_ID, Room, RoomMember, Session, User

logger = logging.getLogger(__name__)

PUBLIC, PRIVATE, DIRECT = "public", "private", "direct"
KINDS = (PUBLIC, PRIVATE, DIRECT)


def readable_rooms(user: User | int) -> ColumnElement[bool]:
    """The rooms ``user`` can read, as a filter on Room: public, or one of its members."""
    user_id = user if isinstance(user, int) else user.id
    mine = select(RoomMember.room_id).where(RoomMember.user_id == user_id)
    return or_(Room.kind == PUBLIC, Room.id.in_(mine))


async def readable_room(db: Database, user: User | int, room_id: int) -> Room | None:
    """The room if ``user`` can read it, else None, whether it is missing or not
    theirs: one query either way, so the two cannot be told apart."""
    if not 0 < room_id <= MAX_ID:
        return None
    return await db.run_read(_readable_room, user, room_id)


def _readable_room(session: OrmSession, user: User | int, room_id: int) -> Room | None:
    return session.scalar(select(Room).where(Room.id == room_id, readable_rooms(user)))


async def can_read(db: Database, user: User | int, room_id: int) -> bool:
    return await readable_room(db, user, room_id) is not None


async def readers(db: Database, room_id: int, user_ids: Sequence[int]) -> set[int]:
    """Which of these users can read the room (all of them, if it is public)."""
    async with db.read() as session:
        kind = await session.scalar(select(Room.kind).where(Room.id == room_id))
        if kind is None:
            return set()
        if kind == PUBLIC:
            return set(user_ids)
        query = select(RoomMember.user_id).where(
            RoomMember.room_id == room_id, RoomMember.user_id.in_(list(user_ids))
        )
        return set(await session.scalars(query))


async def member_ids(db: Database, room_id: int) -> list[int]:
    async with db.read() as session:
        query = select(RoomMember.user_id).where(RoomMember.room_id == room_id)
        return list(await session.scalars(query))


T = TypeVar("T")
CHUNK = 500  # ids per IN list: well inside every database's limit on bound values


def _existing(session: OrmSession, column: InstrumentedAttribute[T], ids: set[T]) -> set[T]:
    """Which of ``ids`` are still in ``column``'s table."""
    wanted, found = list(ids), set[T]()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(session.scalars(select(column).where(column.in_(chunk))))
    return found


def _closed_rooms(session: OrmSession, room_ids: set[int]) -> set[int]:
    """Which of these rooms are private or direct."""
    wanted, found = list(room_ids), set[int]()
    for start in range(0, len(wanted), CHUNK):
        query = select(Room.id).where(Room.id.in_(wanted[start : start + CHUNK]))
        found.update(session.scalars(query.where(Room.kind != PUBLIC)))
    return found


def _memberships(session: OrmSession, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of these (room id, user id) pairs are memberships."""
    wanted, found = list(pairs), set[tuple[int, int]]()
    key = tuple_(RoomMember.room_id, RoomMember.user_id)
    for start in range(0, len(wanted), CHUNK):
        query = select(RoomMember.room_id, RoomMember.user_id).where(
            key.in_(wanted[start : start + CHUNK])
        )
        found.update((row[0], row[1]) for row in session.execute(query))
    return found


def _unwelcome(session: OrmSession, conns: Sequence[Connection]) -> list[Connection]:
    sessions = _existing(session, Session.id, {c.session_id for c in conns})
    rooms = _existing(session, Room.id, {c.room_id for c in conns if c.room_id != LOBBY_ROOM})
    closed = _closed_rooms(session, rooms)
    pairs = {(c.room_id, c.user_id) for c in conns if c.room_id in closed}
    members = _memberships(session, pairs) if pairs else set()
    return [
        c
        for c in conns
        if c.session_id not in sessions
        or (c.room_id != LOBBY_ROOM and c.room_id not in rooms)
        or (c.room_id in closed and (c.room_id, c.user_id) not in members)
    ]


async def unwelcome(db: Database, conns: Sequence[Connection]) -> list[Connection]:
    """The connections whose session (and so user: its sessions go with it) or room
    no longer exists, or whose user is no longer a member of their private room or
    DM (the repair for a lost app.announce.close_member). Its statements (one per
    500 ids) run in one read hop (Database.run_read), not several hops each."""
    return await db.run_read(_unwelcome, conns)


async def close_unwelcome(hub: Hub, db: Database) -> int:
    """Close this process's sockets that lost their right to be open; how many."""
    conns = [conn for conns in tuple(hub.rooms.values()) for conn in tuple(conns)]
    if not conns:
        return 0
    closing = await unwelcome(db, conns)
    for conn in closing:
        logger.info(
            "Closing a socket of user %s in room %s: its session, room or membership is gone.",
            conn.user_id,
            conn.room_id,
        )
        conn.close(WS_1008_POLICY_VIOLATION)
    metrics.SOCKETS_RECHECKED_CLOSED.inc(len(closing))
    return len(closing)


async def keep_checking(hub: Hub, db: Database, interval: float) -> None:
    """close_unwelcome every ``interval`` seconds, for as long as we serve."""
    while True:
        await asyncio.sleep(interval)
        try:
            await close_unwelcome(hub, db)
        except Exception as exc:
            if not unavailable(exc):
                logger.exception("Checking the open sockets failed; trying again.")
            else:  # an outage, not a bug: the next check retries
                logger.warning("Checking the open sockets waits for the database: %s", exc)
