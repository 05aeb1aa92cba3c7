"""/api/rooms/{room_id}/messages: page back through a room, post to it, edit and
delete its messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.chat import Chat
from app.errors import ChatError
from app.files import attachments
from app.models import MAX_EMOJI, User
from app.reactions import PATTERN, is_one_emoji
from app.web.api.schemas import (
    CHANGE,
    DELETED,
    NOT_FOUND,
    REACT,
    READ,
    TOO_FAST,
    WRITE,
    MessageEdit,
    MessageIn,
    MessageOut,
)
from app.web.deps import ApiUser, ChatDep, RoomDep
from app.web.limits import MAX_PAGE_SIZE, MAX_SEQ, PAGE_SIZE

router = APIRouter(tags=["messages"])

Emoji = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_EMOJI,
        # Published, and checked by app.reactions (pydantic's default regex engine
        # reads the pattern differently from Python's).
        json_schema_extra={"pattern": PATTERN},
        description="One emoji (one grapheme: a ZWJ sequence such as a family is one); "
        "text, two emoji or control characters are refused.",
        examples=["👍"],
    ),
]
MessageId = Annotated[
    int, Path(ge=1, le=MAX_SEQ, description="The message's id (not its seq).", examples=[42])
]


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
    files = await attachments.of_messages(chat.db, [m.id for m in window if not m.deleted])
    return [
        MessageOut.of_row(m, room_id=room.id, attachments=files.get(m.id, ()))
        for m in reversed(window)
    ]


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
    # The writer saves in a task of its own, with a connection of its own: holding
    # this request's read session meanwhile could leave it none (app.web.reads).
    async with chat.db.unshared():
        message = await chat.post(
            room_id=room.id, author=user, text=body.text, client_id=body.client_id
        )
    return MessageOut.of(message)


@router.patch(
    "/rooms/{room_id}/messages/{message_id}",
    summary="Edit a message (its author; admins: anyone's)",
    description=(
        "The text is limited like a post's (length and rate) and its mentions are found "
        "again. The edit takes the room's next `seq` (the message's `rev`); everyone in "
        "the room sees the message's element swapped in place, marked `data-edited`."
    ),
    operation_id="edit_message",
    responses={**CHANGE, **DELETED, **TOO_FAST},
)
async def edit_message(
    message_id: MessageId, body: MessageEdit, user: ApiUser, room: RoomDep, chat: ChatDep
) -> MessageOut:
    message = await chat.edit(room_id=room.id, message_id=message_id, editor=user, text=body.text)
    return MessageOut.of(message, await chat.reactions_of(message))


@router.delete(
    "/rooms/{room_id}/messages/{message_id}",
    summary="Delete a message (its author; admins: anyone's)",
    description=(
        "The message stays as a tombstone (`deleted`, no text, no author), so pages, "
        "history and resumes all show the delete; it takes the room's next `seq`. "
        "Deleting a deleted message changes nothing."
    ),
    operation_id="delete_message",
    status_code=204,
    response_class=Response,
    responses={**CHANGE, **TOO_FAST},
)
async def delete_message(
    message_id: MessageId, user: ApiUser, room: RoomDep, chat: ChatDep
) -> None:
    await chat.delete(room_id=room.id, message_id=message_id, deleter=user)


REACTION_PATH = "/rooms/{room_id}/messages/{message_id}/reactions/{emoji}"


@router.put(
    REACTION_PATH,
    summary="React to a message with one emoji",
    description=(
        "Idempotent: reacting again with the same emoji changes nothing. A change takes "
        "the room's next `seq` (the message's `rev`) and everyone in the room sees the "
        "message's element swapped in place with its counts. Rate limited like posts."
    ),
    operation_id="add_reaction",
    responses={**REACT, **TOO_FAST},
)
async def add_reaction(
    message_id: MessageId, emoji: Emoji, user: ApiUser, room: RoomDep, chat: ChatDep
) -> MessageOut:
    return await _react(chat, room.id, message_id, user, emoji, on=True)


@router.delete(
    REACTION_PATH,
    summary="Take back one's reaction",
    description="Idempotent: taking back a reaction that is not there changes nothing.",
    operation_id="remove_reaction",
    responses={**REACT, **TOO_FAST},
)
async def remove_reaction(
    message_id: MessageId, emoji: Emoji, user: ApiUser, room: RoomDep, chat: ChatDep
) -> MessageOut:
    return await _react(chat, room.id, message_id, user, emoji, on=False)


async def _react(
    chat: Chat, room_id: int, message_id: int, user: User, emoji: str, *, on: bool
) -> MessageOut:
    if not is_one_emoji(emoji):
        raise ChatError("A reaction is one emoji (not text, not two emoji).")
    message = await chat.react(
        room_id=room_id, message_id=message_id, user=user, emoji=emoji, on=on
    )
    return MessageOut.of(message, await chat.reactions_of(message))
