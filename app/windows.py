"""Reading messages as pages show them: windows of a room, the cached latest window,
and the catch-up of a socket that fell behind."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics, reactions, render
from app.db import Database
from app.models import Message, Room, User
from app.rooms import get_room
from app.settings import Settings

MESSAGES, USERS = Message.__table__, User.__table__
# A room's messages as the columns a message's fragment shows (render.MessageView),
# as plain rows: ORM objects cost more to load than to render.
ROOM_MESSAGES = (
    select(
        MESSAGES.c.id,
        MESSAGES.c.seq,
        func.coalesce(USERS.c.username, "").label("username"),
        MESSAGES.c.text,
        MESSAGES.c.created_at,
        MESSAGES.c.mentions,
        MESSAGES.c.html,
        func.coalesce(USERS.c.is_bot, false()).label("is_bot"),
        MESSAGES.c.rev,
        MESSAGES.c.edited_at,
        MESSAGES.c.deleted_at,
        func.coalesce(USERS.c.id, 0).label("author_id"),
        USERS.c.display_name,
        USERS.c.avatar_key,
    )
    # Outer: a removed user's messages stay, as tombstones with no author.
    .outerjoin_from(MESSAGES, USERS, MESSAGES.c.author_id == USERS.c.id)
    .where(MESSAGES.c.room_id == bindparam("room"))
    .limit(bindparam("limit"))
)
# A window for a page, newest first.
LATEST_WINDOW = ROOM_MESSAGES.order_by(MESSAGES.c.seq.desc())
WINDOW_BEFORE = LATEST_WINDOW.where(MESSAGES.c.seq < bindparam("before"))
# What changed after a socket's last seq (new, edited, deleted, reacted to), in the
# order it changed: from the (room_id, rev) index.
CHANGED = ROOM_MESSAGES.where(MESSAGES.c.rev > bindparam("after")).order_by(MESSAGES.c.rev)
# History read forwards from a permalink, oldest first.
NEWER = ROOM_MESSAGES.where(MESSAGES.c.seq > bindparam("after")).order_by(MESSAGES.c.seq)
LAST_SEQ = select(Room.last_seq).where(Room.id == bindparam("room"))
# Which messages the latest window holds, with their authors' faces (app.faces): a
# changed display name or avatar moves no room's last_seq, so the cached window is
# checked against them too (by the users' primary key, for a window's few rows).
LATEST_IDS = (
    select(MESSAGES.c.id, USERS.c.display_name, USERS.c.avatar_key)
    .outerjoin_from(MESSAGES, USERS, MESSAGES.c.author_id == USERS.c.id)
    .where(MESSAGES.c.room_id == bindparam("room"))
    .order_by(MESSAGES.c.seq.desc())
    .limit(bindparam("limit"))
)
# Rendered windows kept per process: ~1,000 typical ones (~15 K characters each),
# fewer of long messages (one can reach ~1 M); at most 64 MB even if all were emoji.
WINDOW_CACHE_CHARS = 16 * 2**20

# A catch-up's answer: one frame with the missed changes and the seq it ends at.
Update = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CachedWindow:
    """A room's latest window as rendered, and what it was rendered from."""

    # The room row's (created_at, last_seq) then: any change to its messages moves
    # last_seq, and a room made again under a reused id has another created_at.
    stamp: tuple[Any, int]
    # (id, display name, avatar key) newest first.
    ids: list[tuple[int, str | None, str | None]]
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


async def with_reactions(session: AsyncSession, rows: Sequence[Any]) -> list[render.MessageView]:
    """Message rows as views, with their reactions (one more query, for the rows
    that can have any). A reaction moves its message's rev past its seq
    (app.changes), so a message whose rev is still its seq has none: a window of
    unchanged messages, the common one, costs no second query."""
    changed = [row.id for row in rows if row.rev != row.seq]
    if not changed:
        return [render.MessageView._make((*row, ())) for row in rows]
    conn = await session.connection()
    found = await reactions.of_messages(conn, changed)
    return [render.MessageView._make((*row, found.get(row.id, ()))) for row in rows]


class Windows:
    """This process's reads of message windows, with its cache and shared catch-ups."""

    def __init__(self, *, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.cache = WindowCache()
        # Catch-ups in flight, by (room, after), with the seq each reaches and the loop
        # time it began: see catch_up.
        self._catching_up: dict[
            tuple[int, int], tuple[asyncio.Future[Update | None], int, float]
        ] = {}

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
            views = await with_reactions(session, rows)
        return views[::-1]

    async def newer(self, room_id: int, *, after: int, limit: int) -> list[render.MessageView]:
        """Oldest first: up to ``limit`` messages after ``after`` (history read
        forwards, from a permalink towards the newest)."""
        params = {"room": room_id, "after": after, "limit": limit}
        async with self.db.read() as session:
            rows = (await session.execute(NEWER, params)).all()
            return await with_reactions(session, rows)

    async def around(self, room_id: int, seq: int, *, limit: int) -> render.Window | None:
        """The window a permalink opens: the message ``seq`` with up to ``limit``
        messages either side, oldest first; None if no message has that seq."""
        older = await self.window(room_id, before=seq + 1, limit=limit + 1)
        if not older or older[-1].seq != seq:
            return None
        newer = await self.newer(room_id, after=seq, limit=limit + 1)
        more = len(newer) > limit
        newer = newer[:limit]
        last = newer[-1].seq if newer else seq
        return render.Window.of(older + newer, newer_after=last if more else None)

    async def latest_window(self, room: Room) -> render.Window:
        """The room's latest messages as its page shows them, rendered once per change.

        Valid across processes: the stamp comes from the room row this request read
        and the ids from the database now; every change to a message (an edit, a
        delete, a reaction) moves the room's last_seq, usernames never change, and the
        authors' faces are read with the ids.
        A room whose stamp moved skips the ids and reads the window.
        """
        limit = self.settings.history_page
        stamp = (room.created_at, room.last_seq)
        cached = self.cache.get(room.id)
        if cached is not None and cached.stamp == stamp:
            async with self.db.read() as session:
                rows = await session.execute(LATEST_IDS, {"room": room.id, "limit": limit})
                ids = [tuple(row) for row in rows]
            if ids == cached.ids:
                return cached.window
        messages = await self.window(room.id, limit=limit)
        ids = [(m.id, m.display_name, m.avatar_key) for m in reversed(messages)]
        cached = CachedWindow(stamp, ids, render.Window.of(messages))
        self.cache.put(room.id, cached)
        return cached.window

    async def catch_up(
        self, room_id: int, after: int, need: int = 0, since: float = float("-inf")
    ) -> Update | None:
        """One frame with every change after ``after``, or a fresh list if too many;
        it reaches at least ``need``, a seq the asker knows is committed, and holds
        every change committed before loop time ``since`` (when the asker's socket was
        subscribed: what was published before then never reached it live).

        The sockets of a room fall behind together (a message that came too late
        from another worker, a Redis reconnect): those asking at the same time from
        the same seq share one query instead of each running its own. A query in
        flight is shared only with askers it is sure to satisfy: one started before
        seq ``need`` committed may end below it, and the asker would skip the rest;
        one started before ``since`` may miss a message published before the asker
        subscribed, which no live event brings it (a socket joining as a message
        commits, while other sockets catch up from the same seq).
        """
        key = (room_id, after)
        shared = self._catching_up.get(key)
        if shared is None or shared[1] < need or shared[2] < since:
            started = asyncio.get_running_loop().time()
            future = asyncio.ensure_future(self._read_changed(room_id, after))
            shared = self._catching_up[key] = (future, need, started)
            future.add_done_callback(lambda done: self._forget_catch_up(key, done))
        # One asker cancelled (its socket closed) must not cancel the others' answer.
        return await asyncio.shield(shared[0])

    def _forget_catch_up(self, key: tuple[int, int], done: asyncio.Future[Any]) -> None:
        if (shared := self._catching_up.get(key)) is not None and shared[0] is done:
            del self._catching_up[key]

    async def _read_changed(self, room_id: int, after: int) -> Update | None:
        """The state of every message changed after ``after``, and the seq that is
        then complete: the room's last_seq, read before the messages.

        Read first, last_seq L says every change up to L has committed (seqs are taken
        under the room row's lock), so the messages read next hold all of them, and
        perhaps later ones: the cursor is L or the highest rev read, whichever is
        higher. That needs no shared snapshot (PostgreSQL reads each statement in
        its own), and a change whose message is gone since (deleted by SQL)
        still moves the cursor past its seq.
        """
        metrics.CATCH_UP_QUERIES.inc()
        limit = self.settings.resync_limit
        params = {"room": room_id, "after": after, "limit": limit + 1}
        async with self.db.read() as session:
            last = await session.scalar(LAST_SEQ, {"room": room_id})
            rows = (await session.execute(CHANGED, params)).all()
        if last is None:  # the room is gone: its close event ends the socket
            return None
        cursor = max(last, rows[-1].rev if rows else 0)
        if cursor <= after:
            return None
        if len(rows) <= limit:
            async with self.db.read() as session:
                changed = await with_reactions(session, rows)
            return render.caught_up(changed, after, cursor), cursor
        room = await get_room(self.db, room_id)
        latest = await self.window(room_id, limit=self.settings.history_page)
        if room is None or not latest:
            return None
        cursor = max(room.last_seq, *(m.rev for m in latest))
        return render.replaced_messages(room, latest, cursor), cursor
