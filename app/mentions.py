"""Mentions: which ``@username`` in a text names a user who can read the room.

Found once, when the message is saved (app.writer, in its transaction): the
usernames go into the message row (its fragment renders from them, once for
everybody) and one ``message_mentions`` row per mentioned user (what the unread
counts read). Anything else after an ``@`` stays plain text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from sqlalchemy import Connection, func, select

from app.db import Database
from app.models import Room, RoomMember, User

# A username (3–32 of A-Z a-z 0-9 _ . -) after an @ that does not continue a word
# or an address: "bob@example.com" mentions nobody.
MENTION_RE = re.compile(r"(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{3,32})(?![A-Za-z0-9_-])")
# Distinct names looked at per message: a text of 500 names notifies the first 20
# and shows the rest as text. Each user is mentioned (and notified) once per message.
MAX_MENTIONS = 20
CHUNK = 500  # names per IN list
CANDIDATES = 8  # autocomplete suggestions at most


def candidates(text: str) -> list[str]:
    """The username keys (casefolded) a text may mention, in order, at most MAX_MENTIONS.

    A name may be followed by sentence punctuation ("thanks @bob."), and a username
    may end in a dot: both readings are candidates.
    """
    if "@" not in text:
        return []
    found: dict[str, None] = {}
    for match in MENTION_RE.finditer(text):
        for name in _readings(match.group(1)):
            found.setdefault(name.casefold())
        if len(found) >= MAX_MENTIONS:
            break
    return list(found)[:MAX_MENTIONS]


def _readings(name: str) -> Iterable[str]:
    yield name
    trimmed = name.rstrip(".-")
    if trimmed != name and len(trimmed) >= 3:
        yield trimmed


def resolve(token: str, mentioned: dict[str, str]) -> tuple[str, str] | None:
    """The mentioned username a matched token names and how much of the token it
    takes, or None: ``mentioned`` maps username keys to usernames."""
    for name in _readings(token):
        username = mentioned.get(name.casefold())
        if username is not None:
            return username, name
    return None


def can_read(conn: Connection, room_id: int, user_ids: Collection[int]) -> set[int]:
    """Which of these users can read the room: app.access's rule (public, or a
    member), asked on the caller's connection so the writer's transaction sees it.
    Synchronous, as the writer's transaction is (app.db.Database.run_write)."""
    if not user_ids:
        return set()
    kind = conn.scalar(select(Room.kind).where(Room.id == room_id))
    if kind is None:
        return set()
    if kind == "public":
        return set(user_ids)
    query = select(RoomMember.user_id).where(
        RoomMember.room_id == room_id, RoomMember.user_id.in_(list(user_ids))
    )
    return set(conn.scalars(query))


def find_users(conn: Connection, keys: Collection[str]) -> dict[str, tuple[int, str]]:
    """Username key -> (id, username) for the keys that name a user (synchronous,
    as can_read)."""
    wanted, found = list(keys), {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = conn.execute(
            select(User.username_key, User.id, User.username).where(User.username_key.in_(chunk))
        )
        found.update({row.username_key: (row.id, row.username) for row in rows})
    return found


async def suggest(db: Database, room_id: int, prefix: str) -> list[str]:
    """Usernames starting with ``prefix`` (any case) of people who can read the room,
    for the composer's ``@`` autocomplete."""
    key = prefix.casefold()
    if len(key) > 32 or not re.fullmatch(r"[a-z0-9_.-]*", key):
        return []
    # LIKE's own wildcards are not username characters except _: escape it.
    pattern = key.replace("_", r"\_") + "%"
    query = (
        select(User.id, User.username)
        .where(User.username_key.like(pattern, escape="\\"))
        .order_by(func.length(User.username_key), User.username_key)
        .limit(CANDIDATES * 4)
    )
    async with db.read() as session:
        conn = await session.connection()
        rows = (await conn.execute(query)).all()
        readers = await conn.run_sync(can_read, room_id, [row.id for row in rows])
    return [row.username for row in rows if row.id in readers][:CANDIDATES]
