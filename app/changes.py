"""Changes to saved messages (an edit, a delete, a reaction), each with the room's
next seq.

A change is one transaction: take the room's next seq (the UPDATE holds the room
row's lock until commit, so changes and new messages commit in seq order), check
the message as it is under that lock, change it and set its ``rev`` to that seq.
A change refused (not the author, a deleted message) rolls back with its seq, so
the room's seqs keep no gap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.orm import Session

from app import markup
from app.db import Database
from app.errors import Conflict, MessageNotFound, NotAllowed, RoomNotFound
from app.files import attachments as files
from app.models import Attachment, Message, User, utcnow
from app.reactions import REACTIONS
from app.search import SearchIndex, create_index
from app.writer import ATTACHMENTS, MENTIONS, TAKE_SEQS, find_mentions


class AlreadyDeleted(Exception):
    """Deleting a tombstone: nothing to change (the transaction rolls back)."""


class Unchanged(Exception):
    """A reaction that is already there (or not): nothing to change."""


class MessageChanges:
    """Edits and deletes of a room's messages, keeping the search index in step."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.index = create_index(db.engine.url)

    async def edit(self, *, room_id: int, message_id: int, editor: User, text: str) -> Message:
        """The message with its new text (and mentions found again), or NotAllowed
        (someone else's, for a non-admin), MessageNotFound or Conflict (deleted)."""
        return await self.db.run_write(self._edit, room_id, message_id, editor, text)

    async def delete(
        self, *, room_id: int, message_id: int, deleter: User
    ) -> tuple[Message, list[str]] | None:
        """The message as a tombstone and the storage keys of the files it had (the
        caller deletes them once this committed), or None if it was deleted already
        (nothing changed); NotAllowed or MessageNotFound as for an edit."""
        try:
            return await self.db.run_write(self._delete, room_id, message_id, deleter)
        except AlreadyDeleted:
            return None

    async def react(
        self, *, room_id: int, message_id: int, user: User, emoji: str, on: bool
    ) -> Message | None:
        """Add (``on``) or take back the user's reaction; the message if that changed
        anything, None if not (a repeated PUT or DELETE). Anyone who can read the
        room may react; not to a deleted message (Conflict)."""
        try:
            return await self.db.run_write(self._react, room_id, message_id, user, emoji, on)
        except Unchanged:
            return None

    # Each change is one synchronous transaction (Database.run_write: on SQLite in
    # the writer's thread, so no aiosqlite write holds the one write lock across
    # event-loop turns), with an ORM session on its connection.

    def _edit(
        self, conn: Connection, room_id: int, message_id: int, editor: User, text: str
    ) -> Message:
        with Session(bind=conn, expire_on_commit=False) as session:
            seq, message = _lock(session, room_id, message_id, editor)
            if message.deleted_at is not None:
                raise Conflict("That message was deleted; it cannot be edited.")
            old_text = message.text
            message.text, message.edited_at, message.rev = text, utcnow(), seq
            session.flush()
            _mention_again(conn, message)
            # Rendered once here, as the writer does for a new message (app.markup).
            message.html = markup.to_html(message.text, message.mentions)
            shown = session.scalars(
                select(Attachment)
                .where(Attachment.message_id == message.id)
                .order_by(Attachment.position)
            )
            message.html += files.html(list(shown))
            session.flush()
            self.index.update(conn, message.id, old_text)
        return message

    def _delete(
        self, conn: Connection, room_id: int, message_id: int, deleter: User
    ) -> tuple[Message, list[str]]:
        with Session(bind=conn, expire_on_commit=False) as session:
            seq, message = _lock(session, room_id, message_id, deleter)
            if message.deleted_at is not None:
                raise AlreadyDeleted
            keys = entomb(session, self.index, message, seq)
        return message, keys

    def _react(
        self, conn: Connection, room_id: int, message_id: int, user: User, emoji: str, on: bool
    ) -> Message:
        with Session(bind=conn, expire_on_commit=False) as session:
            seq, message = _lock(session, room_id, message_id, None)
            if message.deleted_at is not None:
                raise Conflict("That message was deleted; it takes no reactions.")
            mine = (REACTIONS.c.message_id == message.id) & (REACTIONS.c.user_id == user.id)
            mine &= REACTIONS.c.emoji == emoji
            there = conn.scalar(select(func.count()).where(mine))
            if bool(there) == on:
                raise Unchanged
            if on:
                row = {"message_id": message.id, "user_id": user.id, "emoji": emoji}
                conn.execute(insert(REACTIONS).values(**row, created_at=utcnow()))
            else:
                conn.execute(delete(REACTIONS).where(mine))
            message.rev = seq
            session.flush()
        return message


def entomb(session: Session, index: SearchIndex, message: Message, seq: int) -> list[str]:
    """Make ``message`` a tombstone as the change ``seq`` (the room's next, taken by
    the caller under the room row's lock): no text, mentions, HTML, reactions or
    files, and nothing of it left to search. The storage keys of its files, which
    the caller deletes once this committed. The one way a message is deleted: by
    its author or an admin (MessageChanges.delete), or with its author (app.removal)."""
    conn = session.connection()
    old_text = message.text
    message.text, message.mentions, message.html = "", "", None
    message.deleted_at, message.rev = utcnow(), seq
    session.flush()
    conn.execute(delete(MENTIONS).where(MENTIONS.c.message_id == message.id))
    conn.execute(delete(REACTIONS).where(REACTIONS.c.message_id == message.id))
    gone = conn.execute(
        delete(ATTACHMENTS)
        .where(ATTACHMENTS.c.message_id == message.id)
        .returning(ATTACHMENTS.c.id, ATTACHMENTS.c.thumbnail)
    )
    keys = [key for row in gone for key in row if key]
    # Indexed again with its empty text rather than taken out: the row stays,
    # and SQLite's cascade trigger (a deleted room) will take out what is indexed
    # for it, which must then be there.
    index.update(conn, message.id, old_text)
    return keys


def _lock(
    session: Session, room_id: int, message_id: int, actor: User | None
) -> tuple[int, Message]:
    """The room's next seq (its row locked) and the message, which ``actor`` may
    change: their own, or anyone's for an admin (None: anyone may)."""
    seq = session.connection().execute(TAKE_SEQS, {"room": room_id, "n": 1}).scalar()
    if seq is None:
        raise RoomNotFound()
    message = session.get(Message, message_id, populate_existing=True)
    if message is None or message.room_id != room_id:
        raise MessageNotFound()
    if actor is not None and message.author_id != actor.id and not actor.is_admin:
        raise NotAllowed("Only its author (or an admin) can change a message.")
    return seq, message


def _mention_again(conn: Connection, message: Message) -> None:
    """Find the edited text's mentions: the row's usernames and its mention rows
    (kept at the message's creation seq, which unread counts compare)."""
    row: dict[str, Any] = {
        "room_id": message.room_id,
        "seq": message.seq,
        "author_id": message.author_id,
        "text": message.text,
    }
    stored = find_mentions(conn, [row])
    message.mentions = row["mentions"]
    conn.execute(delete(MENTIONS).where(MENTIONS.c.message_id == message.id))
    if stored:
        conn.execute(
            insert(MENTIONS),
            [
                {"message_id": message.id, "user_id": uid, "room_id": rid, "seq": seq}
                for rid, seq, uid in stored
            ],
        )
