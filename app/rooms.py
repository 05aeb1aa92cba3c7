"""Rooms: their validators, lookups, and creating, changing and deleting them.

Used by the JSON API, the admin page, the CLI and Chat alike.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette import status

from app import announce, render
from app.backends import Broker
from app.db import Database
from app.errors import ChatError, RoomExists, RoomNotFound
from app.events import Event, room_channel
from app.models import MAX_DESCRIPTION, MAX_ID, MAX_ROOM_NAME, Room, utcnow

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


async def list_rooms(db: Database) -> list[Room]:
    async with db.read() as session:
        return list(await session.scalars(select(Room).order_by(Room.name)))


async def get_room(db: Database, room_id: int) -> Room | None:
    if not 0 < room_id <= MAX_ID:
        return None  # no such row; SQLite would raise OverflowError on a huge id
    async with db.read() as session:
        return await session.get(Room, room_id)


async def last_seq(db: Database, room_id: int) -> int:
    async with db.read() as session:
        seq = await session.scalar(select(Room.last_seq).where(Room.id == room_id))
    return seq or 0


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
