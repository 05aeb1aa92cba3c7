"""The chat domain: post a message, announce it, join and leave rooms.

The WebSocket endpoint and the REST API both come through here: there is one
path by which a message is validated, saved (app.writer), rendered and announced
(app.backends, then app.hub). Nothing in this module touches a socket. Reads are
app.rooms and app.windows; Chat passes them on so that callers hold one object.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import access, announce, faces, mentions, metrics, reactions, render, rooms, unread
from app.backends import TYPING_EVERY, Broker, Presence, RateLimiter
from app.backends.memory import MemoryRateLimiter
from app.changes import MessageChanges
from app.db import Database
from app.errors import ChatError, MessageNotFound, RateLimited
from app.events import LOBBY, MEMBERS, Event, activity_key, room_channel
from app.files.attachments import NewAttachment
from app.files.storage import Storage, create_storage
from app.models import MAX_CLIENT_ID, Message, Room, User
from app.search import find
from app.settings import Settings
from app.windows import Update, Windows
from app.writer import MessageWriter, Resent

logger = logging.getLogger(__name__)

# How long a room's new messages are gathered before the lobby hears of them (every
# page then fetches its unread counts again, at most every 2 s): at most one event
# per room and worker this often.
ACTIVITY_EVERY = 0.5
# The presence key that counts every socket of a user, whatever room it is in (room
# ids start at 1): who is online at all, for the dots by people's names.
ANYWHERE = 0


class Chat:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        broker: Broker,
        presence: Presence,
        limiter: RateLimiter,
        typing: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        self.presence = presence
        self.limiter = limiter
        self.typing_limiter = typing or MemoryRateLimiter(1 / TYPING_EVERY, 1)
        self.writer = MessageWriter(db)
        self.changes = MessageChanges(db)
        self.windows = Windows(settings=settings, db=db)
        self.storage: Storage = create_storage(settings)
        # Rooms with new messages the lobby has not heard of yet: room -> newest seq.
        self._activity: dict[int, int] = {}
        # One announcement at a time per room: a member list read before another's
        # (its faces looked up meanwhile) must not be sent after it, or it wins.
        self._announcing: collections.defaultdict[int, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )
        self._activity_task: asyncio.Task[None] | None = None
        # Each room's kind, which never changes: where its lobby events may go.
        self._kinds: dict[int, str] = {}

    # Reads, passed on

    async def rooms(self, user: User | None = None) -> list[Room]:
        """The rooms ``user`` can read (app.access); every room for None (operators)."""
        return await rooms.list_rooms(self.db, user)

    async def room(self, room_id: int) -> Room | None:
        return await rooms.get_room(self.db, room_id)

    async def last_seq(self, room_id: int) -> int:
        return await rooms.last_seq(self.db, room_id)

    async def online(self) -> dict[int, int]:
        counts = await self.presence.counts()
        counts.pop(ANYWHERE, None)
        return counts

    async def online_people(self) -> set[str]:
        """The usernames with a socket open anywhere (a room or the home page)."""
        return set(await self.presence.members(ANYWHERE))

    async def window(
        self, room_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[render.MessageView]:
        return await self.windows.window(room_id, before=before, limit=limit)

    async def newer(self, room_id: int, *, after: int, limit: int) -> list[render.MessageView]:
        return await self.windows.newer(room_id, after=after, limit=limit)

    async def around(self, room_id: int, seq: int) -> render.Window | None:
        return await self.windows.around(room_id, seq, limit=self.settings.history_page)

    async def search(
        self,
        user: User,
        text: str,
        *,
        room_id: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[find.Hit]:
        """Messages matching ``text`` in the rooms ``user`` can read, newest first."""
        return await find.search(
            self.db, self.writer.index, user, text, room_id=room_id, before=before, limit=limit
        )

    async def latest_window(self, room: Room) -> render.Window:
        return await self.windows.latest_window(room)

    async def catch_up(
        self, room_id: int, after: int, need: int = 0, since: float = float("-inf")
    ) -> Update | None:
        return await self.windows.catch_up(room_id, after, need, since)

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
        self,
        *,
        room_id: int,
        author: User,
        text: str,
        client_id: str | None = None,
        attachments: Sequence[NewAttachment] = (),
        counted: bool = False,
    ) -> Message:
        """Validate, save with the next seq, render once, publish. Idempotent per client id.

        With ``attachments`` (stored already, app.files) the text is an optional
        caption; ``counted``: the rate limit was applied before the upload was read."""
        sending = await self.send(
            room_id=room_id,
            author=author,
            text=text,
            client_id=client_id,
            attachments=attachments,
            counted=counted,
        )
        # Shielded: a request given up on (its client gone) leaves the message
        # saved and published all the same, never saved and unannounced.
        return await asyncio.shield(sending)

    async def send(
        self,
        *,
        room_id: int,
        author: User,
        text: str,
        client_id: str | None = None,
        attachments: Sequence[NewAttachment] = (),
        counted: bool = False,
    ) -> asyncio.Future[Message]:
        """post() in two halves. This one validates, applies the rate limit and queues
        the save; what it returns is the message once saved and published, which a
        task of its own sees through whether or not anyone waits for it.

        A sender that queues its next message before the last is saved (a socket
        does) has its messages saved in the order sent, and a fast one's share
        transactions: one transaction a message would be most of their cost."""
        text = self.clean_text(text) if text.strip() or not attachments else ""
        self.check_client_id(client_id)
        if not counted:
            await self._limit(author)
        saving = self.writer.queue(
            room_id=room_id,
            author=author,
            text=text,
            client_id=client_id,
            attachments=attachments,
        )
        return asyncio.create_task(self._announce_post(saving, author, client_id))

    async def _announce_post(
        self, saving: asyncio.Future[Message], author: User, client_id: str | None
    ) -> Message:
        try:
            message = await saving
        except (Resent, IntegrityError):
            # Sent again (a page resends what it had pending when it reconnects), or
            # raced in twice through two workers: the first one is the message.
            if client_id and (earlier := await self.db.run_read(_sent, author.id, client_id)):
                return earlier
            raise
        saved_at = time.time()
        metrics.MESSAGES_SAVED.inc()
        html = render.appended_messages([message])
        event = Event("message", html, message.seq, saved_at=saved_at)
        await self._publish(room_channel(message.room_id), event)
        self._room_active(message.room_id, message.seq)
        if message.mentions:
            await self._tell_mentioned(message)
        return message

    def check_client_id(self, client_id: str | None) -> None:
        if client_id is not None and (
            not 0 < len(client_id) <= MAX_CLIENT_ID or "\x00" in client_id
        ):
            raise ChatError(f"client_id must be 1–{MAX_CLIENT_ID} characters (no NUL).")

    async def edit(self, *, room_id: int, message_id: int, editor: User, text: str) -> Message:
        """Change a message's text (its author, or an admin), limited like a send;
        everyone in the room sees its element swapped in place."""
        text = self.clean_text(text)
        await self._limit(editor)
        async with self.db.read() as session:
            before = await session.scalar(select(Message.mentions).where(Message.id == message_id))
        message = await self.changes.edit(
            room_id=room_id, message_id=message_id, editor=editor, text=text
        )
        await self._announce_change(message)
        # An edit can take a mention away: every page fetches its counts again.
        self._room_active(room_id, message.rev)
        # Only the people the edit newly mentions hear of it: an edit must not
        # notify everyone again.
        added = set(message.mentions.split()) - set((before or "").split())
        if added:
            await self._tell_mentioned(message, added)
        return message

    async def delete(self, *, room_id: int, message_id: int, deleter: User) -> None:
        """Make a message a tombstone (its author, or an admin); deleting one that is
        deleted already changes nothing."""
        await self._limit(deleter)
        deleted = await self.changes.delete(room_id=room_id, message_id=message_id, deleter=deleter)
        if deleted is not None:
            message, files = deleted
            # Committed: the rows are gone, so no one can fetch the files any more.
            await self.storage.delete(*files)
            await self._announce_change(message)
            # A tombstone is not unread, nor a mention: every page fetches its counts.
            self._room_active(room_id, message.rev)

    async def limit(self, user: User) -> None:
        """Count one send against the user's rate limit now (RateLimited if over): an
        upload is counted before its body is read."""
        await self._limit(user)

    async def _limit(self, user: User) -> None:
        """The per-user rate limit of sends, which changes share (admins are exempt)."""
        if not user.is_admin:
            retry_after = await self.limiter.hit(f"user:{user.id}")
            if retry_after:
                raise RateLimited(retry_after)

    async def react(
        self, *, room_id: int, message_id: int, user: User, emoji: str, on: bool
    ) -> Message:
        """Add (``on``) or take back the user's reaction, idempotently; rate limited
        like sends. The message, whether or not anything changed."""
        await self._limit(user)
        message = await self.changes.react(
            room_id=room_id, message_id=message_id, user=user, emoji=emoji, on=on
        )
        if message is not None:
            await self._announce_change(message)
            return message
        async with self.db.read() as session:
            found = await session.get(Message, message_id)
        if found is None or found.room_id != room_id:
            raise MessageNotFound()
        return found

    async def reactions_of(self, message: Message) -> reactions.Reactions:
        async with self.db.read() as session:
            conn = await session.connection()
            return (await reactions.of_messages(conn, [message.id])).get(message.id, ())

    async def _announce_change(self, message: Message) -> None:
        """A changed message goes out in seq order like a new one (its rev is the
        change's seq), as its element alone, which pages swap in place."""
        html = render.changed_message(message, await self.reactions_of(message))
        event = Event("message", html, message.rev, time.time())
        await self._publish(room_channel(message.room_id), event)

    # Unread counts and typing

    def _room_active(self, room_id: int, seq: int) -> None:
        """Tell every page, soon, that the room has a new message (or one that
        changes unread counts: an edit, a delete), up to ``seq``: they fetch their
        unread counts again. Gathered per room, so a busy room costs one lobby
        event per ACTIVITY_EVERY instead of one per message."""
        self._activity[room_id] = max(seq, self._activity.get(room_id, 0))
        if self._activity_task is None:
            self._activity_task = asyncio.create_task(self._announce_activity())

    async def _announce_activity(self) -> None:
        try:
            await asyncio.sleep(ACTIVITY_EVERY)
        finally:
            self._activity_task = None
            due, self._activity = self._activity, {}
        for room_id, seq in due.items():
            html = render.activity(room_id, seq)
            await self._to_lobby(room_id, Event("state", html, activity_key(room_id)))

    async def _to_lobby(self, room_id: int, event: Event) -> None:
        """A public room's lobby event goes to every page; a private room's or a DM's
        only to its members' sockets (their user channels), so no one else learns
        that it exists, how busy it is or who is in it."""
        kind = self._kinds.get(room_id)
        if kind is None:
            room = await self.room(room_id)
            if room is None:
                return
            kind = self._kinds[room_id] = room.kind
        if kind == access.PUBLIC:
            await self._publish(LOBBY, event)
            return
        private = Event("user", event.html)
        for user_id in await access.member_ids(self.db, room_id):
            await announce.to_user(self.broker, user_id, private)

    async def _tell_mentioned(self, message: Message, names: set[str] | None = None) -> None:
        """Each user the message mentions (of ``names``, if given) gets their new
        counts in its room on every tab, with a note their page may raise as a
        browser notification."""
        names = set(message.mentions.split()) if names is None else names
        async with self.db.read() as session:
            conn = await session.connection()
            users = await conn.run_sync(mentions.find_users, {name.casefold() for name in names})
        ids = [uid for uid, _ in users.values() if uid != message.author_id]
        # Only readers: a private room's note must not reach anyone outside it.
        ids = sorted(await access.readers(self.db, message.room_id, ids)) if ids else []
        room = await self.room(message.room_id)
        if not ids or room is None:
            return
        found = await unread.mentioned_counts(self.db, message.room_id, ids)
        note = render.mention_note(room, message)
        for user_id, counts in found.items():
            html = render.unread_counts({room.id: counts}) + note
            await announce.to_user(self.broker, user_id, Event("user", html))

    async def read(self, *, room_id: int, user: User, seq: int) -> unread.Counts | None:
        """Move the user's read position (clamped, never back) and tell their tabs."""
        counts = await unread.mark_read(self.db, user.id, room_id, seq)
        if counts is not None:
            html = render.unread_counts({room_id: counts})
            await announce.to_user(self.broker, user.id, Event("user", html))
        return counts

    async def unread_counts(
        self, user: User, readable: list[Room] | None = None
    ) -> dict[int, unread.Counts]:
        """The user's counts in the rooms they can read (``readable``, if known)."""
        if readable is None:
            readable = await self.rooms(user)
        return await unread.counts(self.db, user.id, [room.id for room in readable])

    async def typing(self, *, room_id: int, user: User) -> bool:
        """Show "NAME is typing…" to the room, at most once per TYPING_EVERY per user
        and room across workers; never saved. Whether it went out."""
        if await self.typing_limiter.hit(f"{user.id}:{room_id}"):
            return False
        await self._publish(room_channel(room_id), Event("typing", render.typing(user.username)))
        return True

    # Presence

    async def arrive(self, username: str) -> None:
        """Count a socket of the user in ANYWHERE (every room socket and home page)."""
        await self.presence.join(ANYWHERE, username)

    async def depart(self, username: str) -> None:
        await self.presence.leave(ANYWHERE, username)

    async def join(self, room_id: int, username: str) -> str:
        """Count this socket in; announce the user if it is their first. Returns a
        fragment with who is here now, for the joining socket."""
        await self.arrive(username)
        if await self.presence.join(room_id, username):
            await self._announce(room_id, "join", username)
        return await self.members_html(await self.presence.members(room_id))

    async def members_html(self, names: list[str]) -> str:
        """The member list of who is here, with their faces (one query)."""
        return render.members(names, await faces.by_names(self.db, names))

    async def leave(self, room_id: int, username: str) -> None:
        try:
            if await self.presence.leave(room_id, username):
                await self._announce(room_id, "leave", username)
        finally:
            await self.depart(username)

    async def tend_presence(self) -> None:
        """Keep this worker's presence alive and announce what changed elsewhere: the
        users of a worker that died without saying goodbye, and this worker's users
        written back after Redis lost them."""
        for room_id, kind, username in await self.presence.tend():
            if room_id != ANYWHERE:  # not a room: the sidebar's dots poll it
                await self._announce(room_id, kind, username)

    async def _announce(self, room_id: int, kind: str, username: str) -> None:
        # Three events the hubs batch: the line, the room's member list (only the
        # newest is sent) and the room's online badge for every page (the same).
        async with self._announcing[room_id]:
            members = await self.presence.members(room_id)
            channel = room_channel(room_id)
            await self._publish(channel, Event("presence", render.notice(kind, username)))
            listed = await self.members_html(members)
            await self._publish(channel, Event("state", listed, MEMBERS))
            online = render.online({room_id: len(members)})
            await self._to_lobby(room_id, Event("state", online, room_id))

    async def _publish(self, channel: str, event: Event) -> None:
        # A failed publish must never fail a message that is already saved: sockets
        # repair the gap from the database (see app.announce).
        await announce.publish(self.broker, channel, event)


def _sent(session: Session, author_id: int, client_id: str) -> Message | None:
    """The author's message with this client id (saved already)."""
    return session.scalar(
        select(Message).where(Message.author_id == author_id, Message.client_id == client_id)
    )
