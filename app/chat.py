"""The chat domain: post a message, read history, join and leave rooms.

The WebSocket endpoint and the REST API both come through here: there is one
path by which a message is validated, saved, rendered and announced. Nothing in
this module touches a socket.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app import metrics, render
from app.backends import Broker, Presence, RateLimiter
from app.db import Database
from app.events import LOBBY, MEMBERS, Event, room_channel
from app.models import Message, Room, User, utcnow
from app.settings import Settings

logger = logging.getLogger(__name__)

MAX_CLIENT_ID = 64
ROOM_GONE = 1008  # the close code for the sockets of a deleted room
MAX_ROOM_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


ROOMS, MESSAGES, USERS = Room.__table__, Message.__table__, User.__table__
# Takes n seqs for a room: the UPDATE holds the room row's lock until commit, so
# seqs commit in order.
TAKE_SEQS = (
    update(ROOMS)
    .where(ROOMS.c.id == bindparam("room"))
    .values(last_seq=ROOMS.c.last_seq + bindparam("n"))
    .returning(ROOMS.c.last_seq)
)
# A room's messages as the columns a message's fragment shows (render.MessageView),
# as plain rows: ORM objects cost more to load than to render.
ROOM_MESSAGES = (
    select(MESSAGES.c.id, MESSAGES.c.seq, USERS.c.username, MESSAGES.c.text, MESSAGES.c.created_at)
    .join_from(MESSAGES, USERS, MESSAGES.c.author_id == USERS.c.id)
    .where(MESSAGES.c.room_id == bindparam("room"))
    .limit(bindparam("limit"))
)
# A window for a page, newest first.
LATEST_WINDOW = ROOM_MESSAGES.order_by(MESSAGES.c.seq.desc())
WINDOW_BEFORE = LATEST_WINDOW.where(MESSAGES.c.seq < bindparam("before"))
# What a socket missed after its last seq, oldest first.
MISSED = ROOM_MESSAGES.where(MESSAGES.c.seq > bindparam("after")).order_by(MESSAGES.c.seq)
# Which messages the latest window holds: on SQLite straight from the (room_id, seq)
# index, which holds the id (the rowid) too.
LATEST_IDS = (
    select(MESSAGES.c.id)
    .where(MESSAGES.c.room_id == bindparam("room"))
    .order_by(MESSAGES.c.seq.desc())
    .limit(bindparam("limit"))
)
# Rendered windows kept per process: ~1,000 typical ones (~15 K characters each),
# fewer of long messages (one can reach ~1 M); at most 64 MB even if all were emoji.
WINDOW_CACHE_CHARS = 16 * 2**20
MAX_BATCH = 500  # rows in one INSERT (6 bound values each; SQLite allows 32,766)


@dataclass
class Post:
    """A message waiting to be saved, and the future its sender awaits."""

    row: dict[str, Any]
    author: User
    done: asyncio.Future[Message]


class MessageWriter:
    """Saves messages in batches: whatever was posted while the previous transaction
    ran goes into the next one, with one UPDATE per room for the seqs and one INSERT.

    A transaction costs far more than a row (with SQLite each statement is a hop
    to the driver's thread), so under load the cost per message falls instead of
    the queue growing. One message alone is saved at once, as before.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[Post] = []
        self._task: asyncio.Task[None] | None = None

    async def save(
        self, *, room_id: int, author: User, text: str, client_id: str | None
    ) -> Message:
        row = {
            "room_id": room_id,
            "author_id": author.id,
            "text": text,
            "client_id": client_id or None,
            "created_at": utcnow(),
        }
        post = Post(row, author, asyncio.get_running_loop().create_future())
        self._queue.append(post)
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="message-writer")
        return await post.done

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
        rooms: dict[int, list[Post]] = {}
        for post in batch:
            rooms.setdefault(post.row["room_id"], []).append(post)
        saved: list[Post] = []
        async with self.db.write() as session:
            conn = await session.connection()
            for room_id, posts in rooms.items():
                params = {"room": room_id, "n": len(posts)}
                last = (await conn.execute(TAKE_SEQS, params)).scalar()
                if last is None:
                    for post in posts:
                        _settle(post, RoomNotFound())
                    continue
                for seq, post in enumerate(posts, start=last - len(posts) + 1):
                    post.row["seq"] = seq
                saved += posts
            if saved:
                rows = [post.row for post in saved]
                insert_rows = insert(MESSAGES).values(rows)
                returned = insert_rows.returning(MESSAGES.c.id, MESSAGES.c.room_id, MESSAGES.c.seq)
                ids = {(r.room_id, r.seq): r.id for r in await conn.execute(returned)}
        for post in saved:
            message = Message(id=ids[post.row["room_id"], post.row["seq"]], **post.row)
            message.author = post.author
            _settle(post, message)


@dataclass(frozen=True, slots=True)
class CachedWindow:
    """A room's latest window as rendered, and what it was rendered from."""

    # The room row's (created_at, last_seq) then: any new message changes last_seq,
    # and a room made again under a reused id has another created_at.
    stamp: tuple[Any, int]
    ids: list[int]  # newest first; a deleted message (its author was deleted) drops out
    window: render.Window


class WindowCache:
    """Rendered latest windows by room; the least recently rendered go first once
    they hold more than ``budget`` characters of HTML."""

    def __init__(self, budget: int = WINDOW_CACHE_CHARS) -> None:
        self.budget = budget
        self.size = 0
        self._windows: dict[int, CachedWindow] = {}

    def get(self, room_id: int) -> CachedWindow | None:
        return self._windows.get(room_id)

    def put(self, room_id: int, cached: CachedWindow) -> None:
        self._drop(room_id)
        self._windows[room_id] = cached
        self.size += len(cached.window.html)
        while self.size > self.budget and len(self._windows) > 1:
            self._drop(next(iter(self._windows)))

    def _drop(self, room_id: int) -> None:
        dropped = self._windows.pop(room_id, None)
        if dropped is not None:
            self.size -= len(dropped.window.html)

    def __contains__(self, room_id: int) -> bool:
        return room_id in self._windows


def _settle(post: Post, outcome: Message | Exception) -> None:
    if post.done.done():  # the sender gave up (its socket closed)
        return
    if isinstance(outcome, Exception):
        post.done.set_exception(outcome)
    else:
        post.done.set_result(outcome)


class ChatError(Exception):
    """Something the user can fix; the message is shown to them."""


class RoomNotFound(ChatError):
    def __init__(self) -> None:
        super().__init__("That room does not exist (any more).")


class RoomExists(ChatError):
    def __init__(self, name: str) -> None:
        super().__init__(f"A room named {name!r} exists already.")


class RateLimited(ChatError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"You are sending too fast; try again in {retry_after:.1f} s.")
        self.retry_after = retry_after


# What a room name cannot hold: control characters and line breaks. A rule a
# regular expression states, so the API schema documents it exactly
# (str.isprintable() also refused emoji joined with U+200D). Lone surrogates,
# which only undecodable bytes (as in argv) produce, cannot be stored either.
CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
BAD_IN_ROOM_NAME_RE = re.compile(rf"[{CONTROL_CHARS}\ud800-\udfff]")


def clean_room_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 64 or BAD_IN_ROOM_NAME_RE.search(name):
        raise ChatError("Room names are 1–64 characters, without control characters.")
    return name


def clean_description(description: str) -> str:
    description = description.strip()
    if len(description) > 500:
        raise ChatError("Descriptions can be at most 500 characters.")
    if "\x00" in description:  # PostgreSQL cannot store it
        raise ChatError("Descriptions cannot contain NUL characters.")
    return description


async def create_room(db: Database, *, name: str, description: str = "") -> Room:
    name = clean_room_name(name)
    description = clean_description(description)
    async with db.read() as session:
        if await session.scalar(select(Room.id).where(Room.name == name)) is not None:
            raise RoomExists(name)
    try:
        async with db.write() as session:
            room = Room(name=name, description=description, last_seq=0, created_at=utcnow())
            session.add(room)
    except IntegrityError:
        raise RoomExists(name) from None
    return room


async def update_room(
    db: Database, room_id: int, *, name: str | None = None, description: str | None = None
) -> Room:
    """Rename and/or re-describe a room; None leaves a field as it is."""
    values: dict[str, str] = {}
    if name is not None:
        values["name"] = clean_room_name(name)
    if description is not None:
        values["description"] = clean_description(description)
    try:
        async with db.write() as session:
            room = await session.get(Room, room_id)
            if room is None:
                raise RoomNotFound()
            if values.get("name", room.name) != room.name:
                taken = await session.scalar(select(Room.id).where(Room.name == values["name"]))
                if taken is not None:
                    raise RoomExists(values["name"])
            for key, value in values.items():
                setattr(room, key, value)
    except IntegrityError:
        raise RoomExists(values.get("name", "")) from None
    return room


async def delete_room(db: Database, broker: Broker, room_id: int) -> None:
    """Delete a room and its messages, tell the people in it, and close their sockets
    with 1008 (a policy close: htmx does not reconnect to a room that is gone)."""
    async with db.write() as session:
        room = await session.get(Room, room_id)
        if room is None:
            raise RoomNotFound()
        name = room.name
        await session.delete(room)
    logger.info("Deleted room %s.", room_id)
    channel = room_channel(room_id)
    notice = render.render("fragments/admin_room_deleted.html", room_name=name)
    for event in (Event("notice", notice), Event("close", seq=ROOM_GONE)):
        try:
            await broker.publish(channel, event.encode())
        except Exception:
            logger.warning("Could not tell room %s that it was deleted.", room_id, exc_info=True)


class Chat:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        broker: Broker,
        presence: Presence,
        limiter: RateLimiter,
    ) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        self.presence = presence
        self.limiter = limiter
        self.writer = MessageWriter(db)
        self.windows = WindowCache()
        # Catch-ups in flight, by (room, after): see catch_up.
        self._catching_up: dict[
            tuple[int, int], tuple[asyncio.Future[tuple[str, int] | None], int]
        ] = {}

    # Rooms

    async def rooms(self) -> list[Room]:
        async with self.db.read() as session:
            return list(await session.scalars(select(Room).order_by(Room.name)))

    async def room(self, room_id: int) -> Room | None:
        if not 0 < room_id <= MAX_ROOM_ID:
            return None  # no such row; SQLite would raise OverflowError on a huge id
        async with self.db.read() as session:
            return await session.get(Room, room_id)

    async def online(self) -> dict[int, int]:
        return await self.presence.counts()

    # Messages

    def clean_text(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise ChatError("The message is empty.")
        if len(text) > self.settings.max_message_length:
            raise ChatError(
                f"Messages can be at most {self.settings.max_message_length} characters "
                f"(this one has {len(text)})."
            )
        if "\x00" in text:
            raise ChatError("Messages cannot contain NUL characters.")
        return text

    async def post(
        self, *, room_id: int, author: User, text: str, client_id: str | None = None
    ) -> Message:
        """Validate, save with the next seq, render once, publish. Idempotent per client id."""
        text = self.clean_text(text)
        if client_id is not None and (
            not 0 < len(client_id) <= MAX_CLIENT_ID or "\x00" in client_id
        ):
            raise ChatError(f"client_id must be 1–{MAX_CLIENT_ID} characters (no NUL).")
        if client_id and (earlier := await self._sent_before(author.id, client_id)):
            return earlier
        if not author.is_admin:
            retry_after = await self.limiter.hit(f"user:{author.id}")
            if retry_after:
                raise RateLimited(retry_after)
        try:
            message = await self.writer.save(
                room_id=room_id, author=author, text=text, client_id=client_id
            )
        except IntegrityError:
            # The same client id raced in from a retry: the first one won.
            if client_id and (earlier := await self._sent_before(author.id, client_id)):
                return earlier
            raise
        saved_at = time.time()
        metrics.MESSAGES_SAVED.inc()
        html = render.appended_messages([message])
        event = Event("message", html, message.seq, saved_at=saved_at)
        await self._publish(room_channel(room_id), event)
        return message

    async def _sent_before(self, author_id: int, client_id: str) -> Message | None:
        async with self.db.read() as session:
            return await session.scalar(
                select(Message).where(
                    Message.author_id == author_id, Message.client_id == client_id
                )
            )

    async def history(
        self, room_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[Message]:
        """Newest first: up to ``limit`` messages with a seq below ``before``."""
        query = select(Message).where(Message.room_id == room_id)
        if before is not None:
            query = query.where(Message.seq < before)
        query = query.order_by(Message.seq.desc()).limit(limit)
        async with self.db.read() as session:
            return list(await session.scalars(query))

    async def window(
        self, room_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[render.MessageView]:
        """Oldest first: the ``limit`` messages before ``before`` (or the latest), as
        the page shows them."""
        params = {"room": room_id, "limit": limit}
        query = LATEST_WINDOW
        if before is not None:
            query, params["before"] = WINDOW_BEFORE, before
        async with self.db.read() as session:
            rows = (await session.execute(query, params)).all()
        return [render.MessageView._make(row) for row in reversed(rows)]

    async def latest_window(self, room: Room) -> render.Window:
        """The room's latest messages as its page shows them, rendered once per change.

        Valid across processes: the stamp comes from the room row this request read,
        the ids from the database now, and message texts and usernames never change.
        A room whose stamp moved (new messages) skips the ids and reads the window.
        """
        limit = self.settings.history_page
        stamp = (room.created_at, room.last_seq)
        cached = self.windows.get(room.id)
        if cached is not None and cached.stamp == stamp:
            async with self.db.read() as session:
                ids = list(await session.scalars(LATEST_IDS, {"room": room.id, "limit": limit}))
            if ids == cached.ids:
                return cached.window
        messages = await self.window(room.id, limit=limit)
        cached = CachedWindow(stamp, [m.id for m in reversed(messages)], render.Window.of(messages))
        self.windows.put(room.id, cached)
        return cached.window

    async def last_seq(self, room_id: int) -> int:
        async with self.db.read() as session:
            seq = await session.scalar(select(Room.last_seq).where(Room.id == room_id))
        return seq or 0

    async def count_messages(self, room_id: int) -> int:
        async with self.db.read() as session:
            return (
                await session.scalar(
                    select(func.count()).select_from(Message).where(Message.room_id == room_id)
                )
                or 0
            )

    async def catch_up(self, room_id: int, after: int, need: int = 0) -> tuple[str, int] | None:
        """One frame with every message after ``after``, or a fresh list if too many;
        it reaches at least ``need``, a seq the asker knows is committed.

        The sockets of a room fall behind together (a message that came too late
        from another worker, a Redis reconnect): those asking at the same time from
        the same seq share one query instead of each running its own. A query in
        flight is shared only with askers it is sure to satisfy: one started before
        seq ``need`` committed may end below it, and the asker would skip the rest.
        """
        key = (room_id, after)
        shared = self._catching_up.get(key)
        if shared is None or shared[1] < need:
            future = asyncio.ensure_future(self._read_missed(room_id, after))
            shared = self._catching_up[key] = (future, need)
            future.add_done_callback(lambda done: self._forget_catch_up(key, done))
        # One asker cancelled (its socket closed) must not cancel the others' answer.
        return await asyncio.shield(shared[0])

    def _forget_catch_up(self, key: tuple[int, int], done: asyncio.Future[Any]) -> None:
        if (shared := self._catching_up.get(key)) is not None and shared[0] is done:
            del self._catching_up[key]

    async def _read_missed(self, room_id: int, after: int) -> tuple[str, int] | None:
        metrics.CATCH_UP_QUERIES.inc()
        limit = self.settings.resync_limit
        params = {"room": room_id, "after": after, "limit": limit + 1}
        async with self.db.read() as session:
            rows = (await session.execute(MISSED, params)).all()
        if not rows:
            return None
        if len(rows) <= limit:
            missed = [render.MessageView._make(row) for row in rows]
            return render.appended_messages(missed), missed[-1].seq
        room = await self.room(room_id)
        latest = await self.window(room_id, limit=self.settings.history_page)
        if room is None or not latest:
            return None
        return render.replaced_messages(room, latest), latest[-1].seq

    # Presence

    async def join(self, room_id: int, username: str) -> str:
        """Count this socket in; announce the user if it is their first. Returns a
        fragment with who is here now, for the joining socket."""
        if await self.presence.join(room_id, username):
            await self._announce(room_id, "join", username)
        return render.members(await self.presence.members(room_id))

    async def leave(self, room_id: int, username: str) -> None:
        if await self.presence.leave(room_id, username):
            await self._announce(room_id, "leave", username)

    async def tend_presence(self) -> None:
        """Keep this worker's presence alive and announce what changed elsewhere: the
        users of a worker that died without saying goodbye, and this worker's users
        written back after Redis lost them."""
        for room_id, kind, username in await self.presence.tend():
            await self._announce(room_id, kind, username)

    async def _announce(self, room_id: int, kind: str, username: str) -> None:
        # Three events the hubs batch: the line, the room's member list (only the
        # newest is sent) and the room's online badge for every page (the same).
        members = await self.presence.members(room_id)
        channel = room_channel(room_id)
        await self._publish(channel, Event("presence", render.notice(kind, username)))
        await self._publish(channel, Event("state", render.members(members), MEMBERS))
        online = render.online({room_id: len(members)})
        await self._publish(LOBBY, Event("state", online, room_id))

    async def _publish(self, channel: str, event: Event) -> None:
        # Pub/sub may lose events; clients repair gaps from the database, so a
        # failed publish must never fail a message that is already saved.
        try:
            await self.broker.publish(channel, event.encode())
        except Exception:
            logger.warning(
                "Could not publish a %s event on %s.", event.kind, channel, exc_info=True
            )
