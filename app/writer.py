"""The batched message writer: every message is saved here, with its room's next seq."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from app import markup, mentions, metrics
from app.db import Database
from app.errors import RoomNotFound
from app.files import attachments as files
from app.models import Attachment, Message, MessageMention, Room, User, utcnow
from app.search import create_index
from app.webhooks import queue as webhooks

# The mapped classes' tables, typed as tables (a mapping's __table__ is typed as any
# FromClause, which insert() and update() do not take).
ROOMS, MESSAGES = cast(Table, Room.__table__), cast(Table, Message.__table__)
USERS = cast(Table, User.__table__)
MENTIONS = cast(Table, MessageMention.__table__)
ATTACHMENTS = cast(Table, Attachment.__table__)
# Takes n seqs for a room: the UPDATE holds the room row's lock until commit, so
# seqs commit in order.
TAKE_SEQS = (
    update(ROOMS)
    .where(ROOMS.c.id == bindparam("room"))
    .values(last_seq=ROOMS.c.last_seq + bindparam("n"))
    .returning(ROOMS.c.last_seq, ROOMS.c.kind)
)
FACES = select(USERS.c.id, USERS.c.display_name, USERS.c.avatar_key).where(
    USERS.c.id.in_(bindparam("ids", expanding=True))
)
# One statement, compiled once: SQLAlchemy sends a batch's rows as multi-row
# VALUES ("insertmanyvalues"), where .values(rows) was compiled again every batch.
INSERT_MESSAGES = insert(MESSAGES).returning(MESSAGES.c.id, MESSAGES.c.room_id, MESSAGES.c.seq)
MAX_BATCH = 500  # rows in one batch
# Which of these (author, client id) pairs are taken (the unique index's columns).
SENT = select(MESSAGES.c.author_id, MESSAGES.c.client_id).where(
    MESSAGES.c.author_id.in_(bindparam("authors", expanding=True)),
    MESSAGES.c.client_id.in_(bindparam("clients", expanding=True)),
)


class Resent(Exception):
    """The author sent this client id before: that message was saved, this one is not."""


@dataclass
class Written:
    """What a batch's transaction saved: the posts given seqs, those whose room is
    gone, the new messages' ids by (room, seq), and the authors' faces."""

    saved: list[Post] = field(default_factory=list)
    missing: list[Post] = field(default_factory=list)
    resent: list[Post] = field(default_factory=list)
    ids: dict[tuple[int, int], int] = field(default_factory=dict)
    faces: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass(eq=False)  # one post is equal to itself alone (sent_already's lists)
class Post:
    """A message waiting to be saved, and the future its sender awaits."""

    row: dict[str, Any]
    author: User
    done: asyncio.Future[Message]
    # Parsed and rendered by the sender, before the transaction (app.markup.prepare).
    prepared: markup.Prepared
    attachments: Sequence[files.NewAttachment] = field(default_factory=tuple)


class MessageWriter:
    """Saves messages in batches: whatever was posted while the previous transaction
    ran goes into the next one, with one UPDATE per room for the seqs and one INSERT.

    A transaction costs far more than a row (with SQLite each statement is a hop
    to the driver's thread), so under load the cost per message falls instead of
    the queue growing. One message alone is saved at once, as before.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        # Kept in step in the same transaction as the insert.
        self.index = create_index(db.engine.url)
        self._queue: list[Post] = []
        self._task: asyncio.Task[None] | None = None

    def queue(
        self,
        *,
        room_id: int,
        author: User,
        text: str,
        client_id: str | None,
        attachments: Sequence[files.NewAttachment] = (),
    ) -> asyncio.Future[Message]:
        """Queue a message for the next batch; the future is the message once saved.
        Messages are saved in the order they were queued."""
        row = {
            "room_id": room_id,
            "author_id": author.id,
            "text": text,
            "client_id": client_id or None,
            "created_at": utcnow(),
            "mentions": "",
        }
        # Rendered here, in the sender's task: inside the transaction it would hold
        # the room's lock (and SQLite's one writer) for ~0.05-0.2 ms a message.
        prepared = markup.prepare(text)
        future = asyncio.get_running_loop().create_future()
        post = Post(row, author, future, prepared, attachments)
        self._queue.append(post)
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="message-writer")
        return future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    await self._save(batch)
                except Exception:
                    if len(batch) == 1:
                        raise
                    # One bad row (a client id that raced in twice) fails them all:
                    # save them one by one so only that one fails.
                    for post in batch:
                        await self._save_alone(post)
        except Exception as exc:
            for post in batch:
                _settle(post, exc)
        finally:
            self._task = None
            if self._queue:  # arrived while the last batch failed
                self._task = asyncio.create_task(self._drain(), name="message-writer")

    async def _save_alone(self, post: Post) -> None:
        try:
            await self._save([post])
        except Exception as exc:
            _settle(post, exc)

    async def _save(self, batch: list[Post]) -> None:
        written = await self.db.run_write(self._write, batch)
        metrics.MESSAGE_TRANSACTIONS.inc()
        for post in written.missing:
            _settle(post, RoomNotFound())
        for post in written.resent:
            _settle(post, Resent())
        for post in written.saved:
            # The sender's User was read when its socket opened: its display name or
            # avatar may have changed since, and the message shows the current ones.
            face = written.faces.get(post.author.id)
            if face is not None:
                post.author.display_name, post.author.avatar_key = face
            message = Message(id=written.ids[post.row["room_id"], post.row["seq"]], **post.row)
            message.author = post.author
            _settle(post, message)

    def _write(self, conn: Connection, batch: list[Post]) -> Written:
        """The batch's transaction (run_write: synchronous, in one hop on SQLite).
        Nothing here touches the posts' futures: they belong to the event loop."""
        written = Written(resent=sent_already(conn, batch))
        rooms: dict[int, list[Post]] = {}
        for post in batch:
            if post not in written.resent:
                rooms.setdefault(post.row["room_id"], []).append(post)
        kinds: dict[int, str] = {}
        # In room id order, as a user's removal locks rooms (app.removal): two
        # transactions locking the same rooms in other orders could deadlock.
        for room_id, posts in sorted(rooms.items()):
            taken = conn.execute(TAKE_SEQS, {"room": room_id, "n": len(posts)}).first()
            if taken is None:
                written.missing += posts
                continue
            last, kinds[room_id] = taken
            for seq, post in enumerate(posts, start=last - len(posts) + 1):
                post.row["seq"] = post.row["rev"] = seq
            written.saved += posts
        saved = written.saved
        if not saved:
            return written
        keys = [post.prepared.keys for post in saved]
        mentioned = find_mentions(conn, [post.row for post in saved], keys)
        for post in saved:  # once, so fan-out and reads only copy it
            row = post.row
            row["html"] = post.prepared.html_for(row["text"], row["mentions"])
            row["html"] += files.html(post.attachments)
        inserted = conn.execute(INSERT_MESSAGES, [post.row for post in saved])
        ids = written.ids = {(r.room_id, r.seq): r.id for r in inserted}
        self.index.add(conn, [(ids[p.row["room_id"], p.row["seq"]], p.row["text"]) for p in saved])
        if mentioned:
            conn.execute(
                insert(MENTIONS),
                [
                    {"message_id": ids[room_id, seq], "user_id": user_id}
                    | {"room_id": room_id, "seq": seq}
                    for room_id, seq, user_id in mentioned
                ],
            )
        shared = [
            _attachment_row(a, i, ids[p.row["room_id"], p.row["seq"]], p.row)
            for p in saved
            for i, a in enumerate(p.attachments)
        ]
        if shared:
            conn.execute(insert(ATTACHMENTS), shared)
        # Bots' webhook deliveries commit with the message, or not at all.
        webhooks.enqueue(conn, [_saved(p, ids, kinds) for p in saved])
        written.faces = authors_faces(conn, {post.author.id for post in saved})
        return written


def sent_already(conn: Connection, batch: list[Post]) -> list[Post]:
    """The posts whose author used their client id before: a page sends its pending
    messages again after a reconnect. Found here, one statement a batch, rather than
    by a read before each post is queued, which a fast sender would wait on."""
    keyed = [post for post in batch if post.row["client_id"]]
    if not keyed:
        return []
    params = {
        "authors": list({post.row["author_id"] for post in keyed}),
        "clients": list({post.row["client_id"] for post in keyed}),
    }
    taken = {(row.author_id, row.client_id) for row in conn.execute(SENT, params)}
    resent = []
    for post in keyed:
        key = (post.row["author_id"], post.row["client_id"])
        if key in taken:
            resent.append(post)
        taken.add(key)  # twice in one batch: the first is saved
    return resent


def authors_faces(conn: Connection, ids: set[int]) -> dict[int, tuple[str | None, str | None]]:
    """The current display name and avatar key of these users (app.faces)."""
    rows = conn.execute(FACES, {"ids": list(ids)})
    return {row.id: (row.display_name, row.avatar_key) for row in rows}


def find_mentions(
    conn: Connection, rows: list[dict[str, Any]], keys: list[list[str]] | None = None
) -> list[tuple[int, int, int]]:
    """Fill each message row's ``mentions`` with the usernames it mentions; the
    (room, seq, user) of each mention to store. One lookup of the named users for
    the batch. A row has room_id, seq, author_id and text (new ones and edits);
    ``keys``, each row's app.markup.mentionable() if the caller has it already."""
    if keys is None:
        keys = [markup.mentionable(row["text"]) for row in rows]
    named = list(zip(rows, keys, strict=True))
    wanted = {key for _, names in named for key in names}
    for row in rows:
        row["mentions"] = ""
    if not wanted:
        return []
    users = mentions.find_users(conn, wanted)
    readers: dict[int, set[int]] = {}
    for row, names in named:
        ids = {users[key][0] for key in names if key in users}
        readers.setdefault(row["room_id"], set()).update(ids)
    for room_id, ids in readers.items():
        readers[room_id] = mentions.can_read(conn, room_id, ids)
    stored: list[tuple[int, int, int]] = []
    for row, names in named:
        found = [users[key] for key in names if key in users]
        found = [(uid, name) for uid, name in found if uid in readers[row["room_id"]]]
        row["mentions"] = " ".join(name for _, name in found)
        # Mentioning oneself is shown, but is nothing unread.
        stored += [(row["room_id"], row["seq"], uid) for uid, _ in found if uid != row["author_id"]]
    return stored


def _attachment_row(
    attachment: files.NewAttachment, position: int, message_id: int, row: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "message_id": message_id,
        "room_id": row["room_id"],
        "position": position,
        "name": attachment.name,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "thumbnail": attachment.thumbnail,
        "width": attachment.width,
        "height": attachment.height,
        "created_at": row["created_at"],
    }


def _saved(post: Post, ids: dict[tuple[int, int], int], kinds: dict[int, str]) -> webhooks.Saved:
    row = post.row
    return webhooks.Saved(
        ids[row["room_id"], row["seq"]],
        row["room_id"],
        row["author_id"],
        post.author.is_bot,
        row["mentions"],
        kinds[row["room_id"]],
    )


def _settle(post: Post, outcome: Message | Exception) -> None:
    if post.done.done():  # the sender gave up (its socket closed)
        return
    if isinstance(outcome, Exception):
        post.done.set_exception(outcome)
    else:
        post.done.set_result(outcome)
