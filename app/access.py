"""Who may keep a socket open, checked again after the handshake.

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

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import InstrumentedAttribute
from starlette.status import WS_1008_POLICY_VIOLATION

from app import metrics
from app.connection import Connection
from app.db import Database
from app.hub import LOBBY_ROOM, Hub
from app.models import Room, Session, User

logger = logging.getLogger(__name__)

T = TypeVar("T")


def readable_rooms(user: User) -> ColumnElement[bool]:
    """A filter on Room: the rooms ``user`` can read. Every room is public today;
    private rooms will narrow this one function, and search (and lists) follow."""
    return true()


CHUNK = 500  # ids per IN list: well inside every database's limit on bound values


async def _existing(db: Database, column: InstrumentedAttribute[T], ids: set[T]) -> set[T]:
    """Which of ``ids`` are still in ``column``'s table."""
    wanted, found = list(ids), set[T]()
    async with db.read() as session:
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            found.update(await session.scalars(select(column).where(column.in_(chunk))))
    return found


async def unwelcome(db: Database, conns: Sequence[Connection]) -> list[Connection]:
    """The connections whose session (and so user: its sessions go with it) or room
    no longer exists."""
    sessions = await _existing(db, Session.id, {c.session_id for c in conns})
    rooms = await _existing(db, Room.id, {c.room_id for c in conns if c.room_id != LOBBY_ROOM})
    return [
        c
        for c in conns
        if c.session_id not in sessions or (c.room_id != LOBBY_ROOM and c.room_id not in rooms)
    ]


async def close_unwelcome(hub: Hub, db: Database) -> int:
    """Close this process's sockets that lost their right to be open; how many."""
    conns = [conn for conns in tuple(hub.rooms.values()) for conn in tuple(conns)]
    if not conns:
        return 0
    closing = await unwelcome(db, conns)
    for conn in closing:
        logger.info(
            "Closing a socket of user %s in room %s: its session or room is gone.",
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
        except Exception:
            logger.exception("Checking the open sockets failed; trying again.")
