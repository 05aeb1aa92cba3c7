"""Rooms: their validators, lookups, and creating, changing and deleting them.

Used by the JSON API, the admin page, the CLI and Chat alike.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette import status

from app import access, announce, render
from app.auth import USERNAME_RE
from app.backends import Broker
from app.db import Database
from app.errors import ChatError, Conflict, NotAllowed, RoomExists, RoomNotFound, UserNotFound
from app.events import Event, room_channel
from app.models import MAX_DESCRIPTION, MAX_ID, MAX_ROOM_NAME, Room, RoomMember, User, utcnow

logger = logging.getLogger(__name__)

# The close code for the sockets of a deleted room: a policy close, so htmx does
# not reconnect to a room that is gone.
ROOM_GONE = status.WS_1008_POLICY_VIOLATION

# What a room name cannot hold: control characters and line breaks. A rule a
# regular expression states, so the API schema documents it exactly
# (str.isprintable() also refused emoji joined with U+200D). Lone surrogates,
# which only undecodable bytes (as in argv) produce, cannot be stored either.
CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
BAD_IN_ROOM_NAME_RE = re.compile(rf"[{CONTROL_CHARS}\ud800-\udfff]")


def clean_room_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_ROOM_NAME or BAD_IN_ROOM_NAME_RE.search(name):
        raise ChatError(f"Room names are 1–{MAX_ROOM_NAME} characters, without control characters.")
    return name


def clean_description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise ChatError(f"Descriptions can be at most {MAX_DESCRIPTION} characters.")
    if "\x00" in description:  # PostgreSQL cannot store it
        raise ChatError("Descriptions cannot contain NUL characters.")
    return description


async def list_rooms(db: Database, user: User | None = None) -> list[Room]:
    """The rooms ``user`` can read (app.access), by name; every room for None."""
    query = select(Room).order_by(Room.name)
    if user is not None:
        query = query.where(access.readable_rooms(user))
    async with db.read() as session:
        return list(await session.scalars(query))


async def get_room(db: Database, room_id: int) -> Room | None:
    if not 0 < room_id <= MAX_ID:
        return None  # no such row; SQLite would raise OverflowError on a huge id
    async with db.read() as session:
        return await session.get(Room, room_id)


async def last_seq(db: Database, room_id: int) -> int:
    async with db.read() as session:
        seq = await session.scalar(select(Room.last_seq).where(Room.id == room_id))
    return seq or 0


def check_may_create(user: User, room_creation: str) -> None:
    """Who may create rooms (settings.room_creation): everyone, or only admins."""
    if room_creation != "everyone" and not user.is_admin:
        raise NotAllowed("Only admins can create rooms here.")


def may_create(user: User, room_creation: str) -> bool:
    return room_creation == "everyone" or user.is_admin


async def create_room(
    db: Database,
    *,
    name: str,
    description: str = "",
    kind: str = access.PUBLIC,
    created_by: User | None = None,
) -> Room:
    """A public or private room; the creator of a private one is its first member."""
    name = clean_room_name(name)
    description = clean_description(description)
    if kind not in (access.PUBLIC, access.PRIVATE):
        raise ChatError("A room is public or private.")
    if kind == access.PRIVATE and created_by is None:
        raise ChatError("A private room needs a creator to be its first member.")
    async with db.read() as session:
        if await session.scalar(select(Room.id).where(Room.name == name)) is not None:
            raise RoomExists(name)
    try:
        async with db.write() as session:
            room = Room(
                name=name,
                description=description,
                last_seq=0,
                created_at=utcnow(),
                kind=kind,
                created_by=created_by.id if created_by else None,
            )
            session.add(room)
            if kind == access.PRIVATE and created_by is not None:
                await session.flush()
                session.add(RoomMember(room_id=room.id, user_id=created_by.id, added_at=utcnow()))
    except IntegrityError:
        raise RoomExists(name) from None
    return room


# Members ----------------------------------------------------------------------

MAX_DIRECT = 8  # people in a direct room, the caller included


async def members(db: Database, room_id: int) -> list[User]:
    """A room's members, by name (a public room has none: everyone reads it)."""
    async with db.read() as session:
        query = (
            select(User)
            .join(RoomMember, RoomMember.user_id == User.id)
            .where(RoomMember.room_id == room_id)
            .order_by(User.username_key)
        )
        return list(await session.scalars(query))


async def members_by_room(db: Database, room_ids: list[int]) -> dict[int, list[str]]:
    """The usernames of these rooms' members, per room (for the admin page)."""
    found: dict[int, list[str]] = {room_id: [] for room_id in room_ids}
    if not room_ids:
        return found
    async with db.read() as session:
        rows = await session.execute(
            select(RoomMember.room_id, User.username)
            .join(User, User.id == RoomMember.user_id)
            .where(RoomMember.room_id.in_(room_ids))
            .order_by(User.username_key)
        )
        for room_id, username in rows:
            found[room_id].append(username)
    return found


def may_manage(room: Room, user: User) -> bool:
    """Who may add and remove a private room's members: its creator and admins."""
    return user.is_admin or room.created_by == user.id


async def add_member(db: Database, broker: Broker, room: Room, user_id: int, *, by: User) -> bool:
    """Make the user a member of a private room; True if they were not one already."""
    if room.kind != access.PRIVATE:
        raise Conflict("Only a private room has members to add.")
    if not may_manage(room, by):
        raise NotAllowed("Only the room's creator or an admin can add members.")
    async with db.write() as session:
        if await session.get(User, user_id) is None:
            raise UserNotFound()
        if await session.get(RoomMember, (room.id, user_id)) is not None:
            return False
        session.add(RoomMember(room_id=room.id, user_id=user_id, added_at=utcnow()))
    await announce.rooms_changed(broker, user_id)
    return True


async def remove_member(
    db: Database, broker: Broker, room: Room, user_id: int, *, by: User
) -> None:
    """Take the user out of a private room (the creator, an admin, or they themselves,
    leaving): their sockets in it close at once on every worker, and the room leaves
    their sidebar."""
    if room.kind != access.PRIVATE:
        raise Conflict("Only a private room has members to remove.")
    if by.id != user_id and not may_manage(room, by):
        raise NotAllowed("Only the room's creator or an admin can remove members.")
    async with db.write() as session:
        gone = await session.execute(
            delete(RoomMember).where(RoomMember.room_id == room.id, RoomMember.user_id == user_id)
        )
        if not gone.rowcount:  # type: ignore[attr-defined]  # a CursorResult
            raise UserNotFound()
    logger.info("User %s is no longer a member of room %s.", user_id, room.id)
    await announce.close_member(broker, room.id, user_id, ROOM_GONE)
    await announce.room_gone_for(broker, room.id, user_id)


# Direct rooms -------------------------------------------------------------------


async def direct_people(db: Database, directs: list[Room], viewer: User) -> dict[int, list[str]]:
    """Each direct room's other people, by name (only the viewer: a note to self)."""
    if not directs:
        return {}
    names: dict[int, list[str]] = {room.id: [] for room in directs}
    async with db.read() as session:
        rows = await session.execute(
            select(RoomMember.room_id, User.username)
            .join(User, User.id == RoomMember.user_id)
            .where(RoomMember.room_id.in_(list(names)), User.id != viewer.id)
            .order_by(User.username_key)
        )
        for room_id, username in rows:
            names[room_id].append(username)
    return {room_id: people or [viewer.username] for room_id, people in names.items()}


async def direct_names(db: Database, directs: list[Room], viewer: User) -> dict[int, str]:
    """Each direct room's title for ``viewer``: the other people's names."""
    people = await direct_people(db, directs, viewer)
    return {room_id: ", ".join(names) for room_id, names in people.items()}


def direct_name(key: str) -> str:
    """A direct room's stored name: unique as its key, and never a name anyone can
    choose (room names cannot hold the control character it starts with)."""
    return f"\x1fdirect {key}"


async def find_or_create_direct(
    db: Database, caller: User, usernames: list[str]
) -> tuple[Room, bool]:
    """The direct room of exactly the caller and these people, and whether it is new."""
    keys = [name.strip().casefold() for name in usernames]
    if len(set(keys)) != len(keys):
        raise Conflict("Each person can be named once.")
    keys = [key for key in keys if key != caller.username_key]
    if not keys:
        raise Conflict("Name at least one other person.")
    if len(keys) + 1 > MAX_DIRECT:
        raise ChatError(f"A direct conversation has at most {MAX_DIRECT} people, you included.")
    # A name no account can have (a NUL would even fail on PostgreSQL) is not looked up.
    lookup = [n.strip().casefold() for n in usernames if USERNAME_RE.fullmatch(n.strip())]
    async with db.read() as session:
        found = {
            u.username_key: u
            for u in await session.scalars(select(User).where(User.username_key.in_(lookup)))
        }
    for key, name in zip(
        keys, [n for n in usernames if n.strip().casefold() != caller.username_key], strict=True
    ):
        if key not in found:
            raise UserNotFound(name.strip())
    ids = sorted({caller.id, *(u.id for u in found.values())})
    key = ",".join(str(i) for i in ids)
    async with db.read() as session:
        room = await session.scalar(select(Room).where(Room.direct_key == key))
    if room is not None:
        return room, False
    try:
        async with db.write() as session:
            room = Room(
                name=direct_name(key),
                description="",
                last_seq=0,
                created_at=utcnow(),
                kind=access.DIRECT,
                created_by=caller.id,
                direct_key=key,
            )
            session.add(room)
            await session.flush()
            session.add_all(RoomMember(room_id=room.id, user_id=i, added_at=utcnow()) for i in ids)
    except IntegrityError:
        # Started at the same moment by someone else in it: theirs is the room.
        async with db.read() as session:
            room = await session.scalar(select(Room).where(Room.direct_key == key))
        if room is None:
            raise
        return room, False
    return room, True


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
    with ROOM_GONE."""
    async with db.write() as session:
        room = await session.get(Room, room_id)
        if room is None:
            raise RoomNotFound()
        name = room.name
        await session.delete(room)
    logger.info("Deleted room %s.", room_id)
    channel = room_channel(room_id)
    notice = render.render("fragments/admin_room_deleted.html", room_name=name)
    # If these are lost, app.access closes the room's sockets within seconds.
    await announce.publish(broker, channel, Event("notice", notice))
    await announce.publish(broker, channel, Event("close", seq=ROOM_GONE))
