"""/api/rooms: list, read, create, rename and delete rooms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app import access, announce, rooms, unread
from app.rooms import create_room, delete_room
from app.rooms import update_room as update_room_
from app.web.api.schemas import (
    ADMIN_WRITE,
    DIRECT_CONFLICT,
    INVALID,
    NAME_TAKEN,
    NOT_FOUND,
    NOT_PRIVATE,
    READ,
    UNAUTHENTICATED,
    USER_NOT_FOUND,
    WRITE,
    DirectIn,
    MemberOut,
    Problem,
    ReadIn,
    ReadOut,
    RoomIn,
    RoomOut,
    RoomPatch,
)
from app.web.deps import ApiAdmin, ApiUser, ChatDep, DbDep, ManagedRoomDep, RoomDep, UserId

router = APIRouter(tags=["rooms"])


def problem_of(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


# OpenAPI links from a created room to what a client does next with its id.
ROOM_LINKS: dict[str, Any] = {
    "GetRoom": {"operationId": "get_room", "parameters": {"room_id": "$response.body#/id"}},
    "UpdateRoom": {"operationId": "update_room", "parameters": {"room_id": "$response.body#/id"}},
    "DeleteRoom": {"operationId": "delete_room", "parameters": {"room_id": "$response.body#/id"}},
    "ListMessages": {
        "operationId": "list_messages",
        "parameters": {"room_id": "$response.body#/id"},
    },
    "PostMessage": {
        "operationId": "post_message",
        "parameters": {"room_id": "$response.body#/id"},
    },
}


@router.get(
    "/rooms",
    summary="All rooms with their online counts and the caller's unread counts",
    operation_id="list_rooms",
    responses=UNAUTHENTICATED,
)
async def list_rooms(user: ApiUser, chat: ChatDep) -> list[RoomOut]:
    """The rooms the caller can read (app.access): public ones, and their own."""
    online = await chat.online()
    readable = await chat.rooms(user)
    counts = await chat.unread_counts(user, readable)
    return [RoomOut.of(room, online, counts.get(room.id, unread.NONE)) for room in readable]


@router.post(
    "/rooms/{room_id}/read",
    summary="Move the caller's read position in a room",
    description=(
        "The position only moves forward and never past the room's last `seq`: any "
        "`seq` is clamped, never refused. Every open tab of the caller updates its badges."
    ),
    operation_id="mark_read",
    responses={**WRITE, **NOT_FOUND},
)
async def mark_read(body: ReadIn, user: ApiUser, room: RoomDep, chat: ChatDep) -> ReadOut:
    counts = await chat.read(room_id=room.id, user=user, seq=body.seq)
    if counts is None:  # nothing moved: say where it stands
        counts = (await unread.counts(chat.db, user.id, [room.id])).get(room.id, unread.NONE)
    return ReadOut(
        room_id=room.id, seq=counts.read_seq, unread=counts.unread, mentions=counts.mentions
    )


CREATE_WRITE = {
    **WRITE,
    403: problem_of(
        "TALKROOM_ROOM_CREATION=admins and the caller is not an admin, "
        "or the CSRF header is missing or wrong."
    ),
}


@router.post(
    "/rooms",
    summary="Create a public or private room (anyone, unless TALKROOM_ROOM_CREATION=admins)",
    description="A private room's creator is its first member and manages its members.",
    operation_id="create_room",
    status_code=201,
    responses={**CREATE_WRITE, **NAME_TAKEN, 201: {"links": ROOM_LINKS}},
)
async def create(body: RoomIn, user: ApiUser, chat: ChatDep) -> RoomOut:
    rooms.check_may_create(user, chat.settings.room_creation)
    room = await create_room(
        chat.db, name=body.name, description=body.description, kind=body.kind, created_by=user
    )
    await announce.room_created(chat.broker, room)
    return RoomOut.of(room, {})


@router.get(
    "/rooms/{room_id}/members",
    summary="A private room's or DM's members (a public room has none: anyone reads it)",
    operation_id="list_members",
    responses={**READ, **NOT_FOUND},
)
async def list_members(user: ApiUser, room: ManagedRoomDep, db: DbDep) -> list[MemberOut]:
    return [MemberOut.of(u) for u in await rooms.members(db, room.id)]


MEMBER_WRITE = {
    **WRITE,
    **NOT_FOUND,
    403: problem_of("Not the room's creator or an admin, or the CSRF header is wrong."),
}


@router.put(
    "/rooms/{room_id}/members/{user_id}",
    summary="Add a member to a private room (its creator, or admins)",
    operation_id="add_member",
    status_code=204,
    response_class=Response,
    responses={**MEMBER_WRITE, **USER_NOT_FOUND, **NOT_PRIVATE},
)
async def add_member(user_id: UserId, user: ApiUser, room: ManagedRoomDep, chat: ChatDep) -> None:
    await rooms.add_member(chat.db, chat.broker, room, user_id, by=user)


@router.delete(
    "/rooms/{room_id}/members/{user_id}",
    summary="Remove a member from a private room (its creator, admins, or they themselves)",
    description="Their sockets in the room close at once with code 1008, on every worker.",
    operation_id="remove_member",
    status_code=204,
    response_class=Response,
    responses={**MEMBER_WRITE, **USER_NOT_FOUND, **NOT_PRIVATE},
)
async def remove_member(
    user_id: UserId, user: ApiUser, room: ManagedRoomDep, chat: ChatDep
) -> None:
    await rooms.remove_member(chat.db, chat.broker, room, user_id, by=user)


@router.post(
    "/direct",
    summary="The direct conversation with exactly these people: found, or started",
    description="200 with the existing room of exactly the caller and these people, or 201 "
    "with a new one.",
    operation_id="direct_room",
    status_code=201,
    responses={
        **WRITE,
        **INVALID,
        **DIRECT_CONFLICT,
        404: problem_of("No user has one of those names."),
        200: {"model": RoomOut, "description": "It existed already."},
    },
)
async def direct(body: DirectIn, user: ApiUser, chat: ChatDep, response: Response) -> RoomOut:
    room, new = await rooms.find_or_create_direct(chat.db, user, body.usernames)
    if not new:
        response.status_code = 200
    else:
        for member in await access.member_ids(chat.db, room.id):
            if member != user.id:
                await announce.rooms_changed(chat.broker, member)
    return RoomOut.of(room, await chat.online())


@router.get(
    "/rooms/{room_id}",
    summary="One room",
    operation_id="get_room",
    responses={**READ, **NOT_FOUND},
)
async def get_room(user: ApiUser, room: RoomDep, chat: ChatDep) -> RoomOut:
    counts = await unread.counts(chat.db, user.id, [room.id])
    return RoomOut.of(room, await chat.online(), counts.get(room.id, unread.NONE))


@router.patch(
    "/rooms/{room_id}",
    summary="Rename or describe a room (admins)",
    operation_id="update_room",
    responses={**ADMIN_WRITE, **NOT_FOUND, **NAME_TAKEN},
)
async def update_room(
    body: RoomPatch, admin: ApiAdmin, room: ManagedRoomDep, chat: ChatDep
) -> RoomOut:
    updated = await update_room_(chat.db, room.id, name=body.name, description=body.description)
    return RoomOut.of(updated, await chat.online())


@router.delete(
    "/rooms/{room_id}",
    summary="Delete a room and its messages (admins)",
    description="Everyone in the room is told, and their sockets close with code 1008.",
    operation_id="delete_room",
    status_code=204,
    response_class=Response,
    responses={**ADMIN_WRITE, **NOT_FOUND},
)
async def remove_room(admin: ApiAdmin, room: ManagedRoomDep, chat: ChatDep) -> None:
    await delete_room(chat.db, chat.broker, room.id)
