"""/api/rooms/{room_id}/messages: page back through a room, and post to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.web.api.schemas import NOT_FOUND, READ, TOO_FAST, WRITE, MessageIn, MessageOut
from app.web.deps import ApiUser, ChatDep, RoomDep
from app.web.limits import MAX_PAGE_SIZE, MAX_SEQ, PAGE_SIZE

router = APIRouter(tags=["messages"])


@router.get(
    "/rooms/{room_id}/messages",
    summary="A page of a room's messages, newest first",
    description=(
        "Walk back through the history by passing the lowest `seq` of a page as "
        "`before` for the next one; an empty page is the end."
    ),
    operation_id="list_messages",
    responses={**READ, **NOT_FOUND},
)
async def list_messages(
    user: ApiUser,
    room: RoomDep,
    chat: ChatDep,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="Only messages with a lower seq.", examples=[51]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = PAGE_SIZE,
) -> list[MessageOut]:
    # The page's own query (plain rows, oldest first), turned newest first.
    window = await chat.window(room.id, before=before, limit=limit)
    return [MessageOut.of_row(m, room_id=room.id) for m in reversed(window)]


@router.post(
    "/rooms/{room_id}/messages",
    summary="Post a message, delivered like one sent from a browser",
    description=(
        "The message is saved with the room's next `seq` and reaches every WebSocket in "
        "the room. Sending the same `client_id` again returns the first message."
    ),
    operation_id="post_message",
    status_code=201,
    responses={**WRITE, **NOT_FOUND, **TOO_FAST},
)
async def post_message(body: MessageIn, user: ApiUser, room: RoomDep, chat: ChatDep) -> MessageOut:
    message = await chat.post(
        room_id=room.id, author=user, text=body.text, client_id=body.client_id
    )
    return MessageOut.of(message)
