"""Removing a user without changing rooms behind their pages' backs.

Every message of theirs becomes a tombstone and every reaction of theirs goes,
each as a change with its room's next seq (as a delete or an unreact by hand
would be), in the one transaction that then deletes the user. Open pages get the
changes in seq order, and a resume from any seq before them finds them, so a live
page and a fresh fetch agree. Without this, the rows went by cascade and took no
seq: nothing told a page, and nothing a resume asks for brought it up to date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import access, announce, reactions, render
from app.backends import Broker
from app.changes import entomb
from app.db import Database
from app.events import LOBBY, RESYNC, Event, activity_key, room_channel
from app.models import Message, Room, User
from app.reactions import REACTIONS
from app.search import SearchIndex, create_index
from app.windows import MESSAGES, ROOM_MESSAGES
from app.writer import TAKE_SEQS

# A room with up to this many changes gets each as its own event; with more (a
# prolific user), one "resync" asks the room's sockets to repair by state from the
# database: one query per socket (shared by those at the same seq) instead of
# thousands of events through every outbox, which would close slow ones with 1013.
PER_MESSAGE = 20
DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for a transaction it ended to break one
logger = logging.getLogger(__name__)


@dataclass
class RoomChanges:
    """What one room's part of a removal changed: its seqs first..last and, when
    there are few enough to send one by one, the changed messages in seq order."""

    room_id: int
    kind: str
    first: int
    last: int
    views: list[render.MessageView] | None = None


@dataclass
class Removed:
    rooms: dict[int, RoomChanges] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # storage keys, to delete after commit


async def remove_user(db: Database, user_id: int) -> Removed | None:
    """Run the removal's transaction; None if there is no such user.

    PostgreSQL may end it as one side of a deadlock: the user writing again in a
    room the second pass must lock, while this transaction holds their row (see
    remove). It rolled back whole, and the writer it met has gone on: once more."""
    index = create_index(db.engine.url)
    try:
        return await db.run_write(remove, index, user_id)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != DEADLOCK:
            raise
        logger.info("Removing user %s met a deadlock; trying once more.", user_id)
        return await db.run_write(remove, index, user_id)


def remove(conn: Connection, index: SearchIndex, user_id: int) -> Removed | None:
    """The removal's transaction (Database.run_write); None if there is no such user."""
    with Session(bind=conn, expire_on_commit=False) as session:
        if session.get(User, user_id) is None:
            return None
        removed = Removed()
        _change_rooms(session, index, user_id, removed)
        # PostgreSQL: a message or reaction of theirs being written now holds a
        # share lock on the user's row; this waits for it to commit and keeps new
        # ones out (their insert then fails on the foreign key), so the second pass
        # finds what committed in between and nothing can follow it.
        session.execute(select(User.id).where(User.id == user_id).with_for_update())
        _change_rooms(session, index, user_id, removed)
        # Not a foreign key (see models.Room.created_by): a later user with a reused
        # id must not inherit the rooms.
        session.execute(update(Room).where(Room.created_by == user_id).values(created_by=None))
        # Sessions, tokens and read positions cascade; messages keep their rows
        # (SET NULL), as tombstones.
        session.execute(delete(User).where(User.id == user_id))
    return removed


def _change_rooms(session: Session, index: SearchIndex, user_id: int, removed: Removed) -> None:
    """Each room with a live message or a reaction of the user, in room id order:
    the order the writer locks a batch's rooms in, so the two cannot deadlock over
    rooms (the second pass, after the user's row, can: see remove_user)."""
    own = select(Message.room_id).where(Message.author_id == user_id, Message.deleted_at.is_(None))
    reacted = (
        select(Message.room_id)
        .join(REACTIONS, REACTIONS.c.message_id == Message.id)
        .where(REACTIONS.c.user_id == user_id, Message.deleted_at.is_(None))
    )
    rooms = set(session.scalars(own.distinct())) | set(session.scalars(reacted.distinct()))
    for room_id in sorted(rooms):
        _change_room(session, index, user_id, room_id, removed)


def _change_room(
    session: Session, index: SearchIndex, user_id: int, room_id: int, removed: Removed
) -> None:
    conn = session.connection()
    # Lock the room row first (taking no seq), then read what to change: every
    # change of a message takes this lock before it, so what is read stays true.
    if conn.execute(TAKE_SEQS, {"room": room_id, "n": 0}).first() is None:
        return  # the room was deleted meanwhile, with its messages
    live = Message.deleted_at.is_(None) & (Message.room_id == room_id)
    mine = REACTIONS.c.user_id == user_id
    theirs = select(Message.id).join(REACTIONS, REACTIONS.c.message_id == Message.id)
    theirs = theirs.where(live, mine, Message.author_id != user_id).distinct()
    changing = session.scalars(
        select(Message)
        .where(live, (Message.author_id == user_id) | Message.id.in_(theirs))
        .order_by(Message.seq)
        .execution_options(populate_existing=True)
    ).all()
    if not changing:
        return
    last, kind = conn.execute(TAKE_SEQS, {"room": room_id, "n": len(changing)}).one()
    first = last - len(changing) + 1
    for seq, message in enumerate(changing, start=first):
        if message.author_id == user_id:
            removed.files += entomb(session, index, message, seq)
        else:
            conn.execute(delete(REACTIONS).where(mine, REACTIONS.c.message_id == message.id))
            message.rev = seq
    session.flush()
    earlier = removed.rooms.get(room_id)
    if earlier is not None:  # the second pass: contiguous with the first
        first = earlier.first
    changes = RoomChanges(room_id, kind, first, last)
    if last - first + 1 <= PER_MESSAGE:
        views = _views(conn, room_id, first)
        # One view per seq, or the events would leave a gap (a message changed in
        # both passes shows only its second seq): then the sockets repair instead.
        changes.views = views if len(views) == last - first + 1 else None
    removed.rooms[room_id] = changes


def _views(conn: Connection, room_id: int, first: int) -> list[render.MessageView]:
    """The room's messages changed from seq ``first`` on, as pages show them now."""
    query = ROOM_MESSAGES.where(MESSAGES.c.rev >= first).order_by(MESSAGES.c.rev)
    rows = conn.execute(query, {"room": room_id, "limit": PER_MESSAGE}).all()
    found = reactions.of_messages_now(conn, [row.id for row in rows if not row.deleted_at])
    return [render.MessageView._make((*row, found.get(row.id, ()))) for row in rows]


async def announce_removal(db: Database, broker: Broker, removed: Removed) -> None:
    """Once committed: each room's changes to its sockets in seq order (or a resync),
    and its new state to every page's unread counts (tombstones are not unread)."""
    for changes in removed.rooms.values():
        channel = room_channel(changes.room_id)
        if changes.views is None:
            await announce.publish(broker, channel, RESYNC)
        else:
            for event in _events(changes.views):
                await announce.publish(broker, channel, event)
        html = render.activity(changes.room_id, changes.last)
        await _to_lobby(db, broker, changes, Event("state", html, activity_key(changes.room_id)))


def _events(views: Iterable[render.MessageView]) -> list[Event]:
    now = time.time()
    return [Event("message", render.changed_message(view), view.rev, now) for view in views]


async def _to_lobby(db: Database, broker: Broker, changes: RoomChanges, event: Event) -> None:
    """As app.chat does: a public room's lobby event to every page, a private room's
    only to its members."""
    if changes.kind == access.PUBLIC:
        await announce.publish(broker, LOBBY, event)
        return
    for member in await access.member_ids(db, changes.room_id):
        await announce.to_user(broker, member, Event("user", event.html))
