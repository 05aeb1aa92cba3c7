"""/api/rooms: list, read, create, rename and delete rooms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.rooms import create_room, delete_room
from app.rooms import update_room as update_room_
from app.web.api.schemas import (
    ADMIN_WRITE,
    NAME_TAKEN,
    NOT_FOUND,
    READ,
    UNAUTHENTICATED,
    RoomIn,
    RoomOut,
    RoomPatch,
)
from app.web.deps import ApiAdmin, ApiUser, ChatDep, DbDep, RoomDep

router = APIRouter(tags=["rooms"])

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
    summary="All rooms with their online counts",
    operation_id="list_rooms",
    responses=UNAUTHENTICATED,
)
async def list_rooms(user: ApiUser, chat: ChatDep) -> list[RoomOut]:
    online = await chat.online()
    return [RoomOut.of(room, online) for room in await chat.rooms()]


@router.post(
    "/rooms",
    summary="Create a room (admins)",
    operation_id="create_room",
    status_code=201,
    responses={**ADMIN_WRITE, **NAME_TAKEN, 201: {"links": ROOM_LINKS}},
)
async def create(body: RoomIn, admin: ApiAdmin, db: DbDep) -> RoomOut:
    room = await create_room(db, name=body.name, description=body.description)
    return RoomOut.of(room, {})


@router.get(
    "/rooms/{room_id}",
    summary="One room",
    operation_id="get_room",
    responses={**READ, **NOT_FOUND},
)
async def get_room(user: ApiUser, room: RoomDep, chat: ChatDep) -> RoomOut:
    return RoomOut.of(room, await chat.online())


@router.patch(
    "/rooms/{room_id}",
    summary="Rename or describe a room (admins)",
    operation_id="update_room",
    responses={**ADMIN_WRITE, **NOT_FOUND, **NAME_TAKEN},
)
async def update_room(body: RoomPatch, admin: ApiAdmin, room: RoomDep, chat: ChatDep) -> RoomOut:
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
async def remove_room(admin: ApiAdmin, room: RoomDep, chat: ChatDep) -> None:
    await delete_room(chat.db, chat.broker, room.id)
