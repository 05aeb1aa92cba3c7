"""The JSON API, documented at /docs.

Routes stay short: who may call them and which room they touch are dependencies
(app/web/deps.py), and the domain's errors become HTTP answers in one place
(``domain_error`` below), so no route repeats an ``HTTPException`` block.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from app import users
from app.auth import AuthError
from app.db import unavailable
from app.errors import ChatError, RateLimited, RoomExists, RoomNotFound
from app.models import Message, Room, User
from app.render import MessageView
from app.rooms import CONTROL_CHARS, create_room, delete_room
from app.rooms import update_room as update_room_
from app.settings import Settings
from app.web.deps import ApiAdmin, ApiRoom, ApiUser, ChatDep, DbDep, UserId

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api")

MAX_TEXT = Settings.model_fields["max_message_length"].default
MAX_SEQ = 2**63 - 1
# Python's re, so the server reads a pattern exactly as the docs (and test
# generators written in Python) do.
STRICT = ConfigDict(regex_engine="python-re")
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*\S[^\x00]*$"
ROOM_NAME = rf"^[^{CONTROL_CHARS}]*[^\s{CONTROL_CHARS}][^{CONTROL_CHARS}]*$"


# Errors ---------------------------------------------------------------------


class Problem(BaseModel):
    detail: str = Field(examples=["No such room."])


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "name"]])
    msg: str = Field(examples=["String should have at least 1 character"])
    type: str = Field(examples=["string_too_short"])


class ValidationProblem(BaseModel):
    detail: str | list[FieldProblem] = Field(
        description="What is wrong: a sentence, or one entry per invalid field.",
        examples=["The message is empty."],
    )


def problem(description: str, model: type[BaseModel] = Problem, **extra: Any) -> dict[str, Any]:
    return {"model": model, "description": description, **extra}


UNAUTHENTICATED = {
    401: problem(
        "No session cookie or API token, or one that expired or was revoked.",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    )
}
INVALID = {422: problem("The request is not valid; `detail` says why.", ValidationProblem)}
READ = {**UNAUTHENTICATED, **INVALID}
# Unsafe methods with the cookie need the CSRF header: a 403 even for a user allowed to write.
WRITE = {**READ, 403: problem("The CSRF header is missing or wrong.")}
ADMIN_WRITE = {**READ, 403: problem("Not an admin, or the CSRF header is missing or wrong.")}
NOT_FOUND = {404: problem("There is no room with that id.")}
USER_NOT_FOUND = {404: problem("There is no user with that id.")}
NAME_TAKEN = {409: problem("Another room has that name.")}
SELF_LOCKOUT = {409: problem("An admin cannot demote or remove themselves.")}
TOO_FAST = {
    429: problem(
        "Over the per-user message rate limit (admins are exempt).",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    )
}

STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (RoomNotFound, 404),
    (users.UserNotFound, 404),
    (RoomExists, 409),
    (users.SelfLockout, 409),
    (RateLimited, 429),
)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """ChatError and AuthError, which the user caused, as ``{"detail": ...}``."""
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 422)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without echoing the input back: it can be large, and a lone
    surrogate in it cannot even be encoded as UTF-8 (which would turn a 422 into a 500)."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


async def unparsable_body(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 for a body that is not even text; for the API that is one
    more kind of unprocessable request (422), as the contract lists."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "The body is not valid UTF-8 JSON."}, status_code=422)
    assert isinstance(exc, StarletteHTTPException)
    return await http_exception_handler(request, exc)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with every method the path has in ``Allow``: each FastAPI route holds one
    method, and Starlette would list only the first route's."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            allowed |= route.methods
    headers = {"Allow": ", ".join(sorted(allowed))}
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


DATABASE_DOWN = "The database is not answering; nothing was saved. Try again in a moment."


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After while the database is away; anything else is a bug (500)."""
    if not unavailable(exc):
        raise exc
    logger.warning("The database is not answering: %s", type(exc).__name__)
    headers = {"Retry-After": "5"}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": DATABASE_DOWN}, status_code=503, headers=headers)
    return PlainTextResponse(DATABASE_DOWN, status_code=503, headers=headers)


EXCEPTION_HANDLERS = {
    DBAPIError: database_unavailable,
    OSError: database_unavailable,
    TimeoutError: database_unavailable,
    ChatError: domain_error,
    AuthError: domain_error,
    RequestValidationError: validation_error,
    400: unparsable_body,
    405: method_not_allowed,
}


# Schemas --------------------------------------------------------------------


class Me(BaseModel):
    id: int = Field(examples=[1])
    username: str = Field(examples=["alice"])
    is_admin: bool = Field(examples=[False])


class UserOut(Me):
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id, username=user.username, is_admin=user.is_admin, created_at=user.created_at
        )


class UserPatch(BaseModel):
    is_admin: bool = Field(description="Grant (true) or take away (false) admin rights.")


class RoomOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[1])
    name: str = Field(examples=["general"])
    description: str = Field(examples=["Talk about anything"])
    online: int = Field(0, description="People with the room open right now.", examples=[3])
    created_at: datetime


RoomName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=ROOM_NAME,
        description="1–64 characters without control characters, unique; "
        "spaces around it are dropped.",
        examples=["general"],
    ),
]
Description = Annotated[
    str, Field(max_length=500, pattern=NO_NUL, examples=["Talk about anything"])
]


class RoomIn(BaseModel):
    model_config = STRICT

    name: RoomName
    description: Description = ""


class RoomPatch(BaseModel):
    model_config = STRICT

    name: RoomName | None = Field(None, description="A new name; omit to keep the name.")
    description: Description | None = Field(None, description="A new description; omit to keep it.")


class MessageOut(BaseModel):
    id: int = Field(examples=[42])
    seq: int = Field(description="The message's number in its room: 1, 2, 3, …", examples=[7])
    room_id: int = Field(examples=[1])
    author: str = Field(description="The author's username.", examples=["alice"])
    text: str = Field(examples=["Hello, room!"])
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            seq=message.seq,
            room_id=message.room_id,
            author=message.author.username,
            text=message.text,
            created_at=message.created_at,
        )

    @classmethod
    def of_row(cls, row: MessageView, *, room_id: int) -> MessageOut:
        return cls(room_id=room_id, **row._asdict())


class MessageIn(BaseModel):
    model_config = STRICT

    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        pattern=NOT_BLANK,
        description=f"Up to {MAX_TEXT} characters; trimmed.",
        examples=["Hello, room!"],
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description="Makes a retry safe: the same author and client_id save one message.",
        examples=["3f2a9c1e-retry-safe"],
    )


def room_out(room: Room, online: dict[int, int]) -> RoomOut:
    out = RoomOut.model_validate(room)
    out.online = online.get(room.id, 0)
    return out


# Account --------------------------------------------------------------------


@router.get("/me", tags=["account"], summary="The current user", responses=UNAUTHENTICATED)
async def me(user: ApiUser) -> Me:
    return Me(id=user.id, username=user.username, is_admin=user.is_admin)


# Rooms ----------------------------------------------------------------------

ROOM_LINKS = {
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
    tags=["rooms"],
    summary="All rooms with their online counts",
    operation_id="list_rooms",
    responses=UNAUTHENTICATED,
)
async def list_rooms(user: ApiUser, chat: ChatDep) -> list[RoomOut]:
    online = await chat.online()
    return [room_out(room, online) for room in await chat.rooms()]


@router.post(
    "/rooms",
    tags=["rooms"],
    summary="Create a room (admins)",
    operation_id="create_room",
    status_code=201,
    responses={**ADMIN_WRITE, **NAME_TAKEN, 201: {"links": ROOM_LINKS}},
)
async def create(body: RoomIn, admin: ApiAdmin, db: DbDep) -> RoomOut:
    room = await create_room(db, name=body.name, description=body.description)
    return room_out(room, {})


@router.get(
    "/rooms/{room_id}",
    tags=["rooms"],
    summary="One room",
    operation_id="get_room",
    responses={**READ, **NOT_FOUND},
)
async def get_room(user: ApiUser, room: ApiRoom, chat: ChatDep) -> RoomOut:
    return room_out(room, await chat.online())


@router.patch(
    "/rooms/{room_id}",
    tags=["rooms"],
    summary="Rename or describe a room (admins)",
    operation_id="update_room",
    responses={**ADMIN_WRITE, **NOT_FOUND, **NAME_TAKEN},
)
async def update_room(body: RoomPatch, admin: ApiAdmin, room: ApiRoom, chat: ChatDep) -> RoomOut:
    updated = await update_room_(chat.db, room.id, name=body.name, description=body.description)
    return room_out(updated, await chat.online())


@router.delete(
    "/rooms/{room_id}",
    tags=["rooms"],
    summary="Delete a room and its messages (admins)",
    description="Everyone in the room is told, and their sockets close with code 1008.",
    operation_id="delete_room",
    status_code=204,
    response_class=Response,
    responses={**ADMIN_WRITE, **NOT_FOUND},
)
async def remove_room(admin: ApiAdmin, room: ApiRoom, chat: ChatDep) -> None:
    await delete_room(chat.db, chat.broker, room.id)


# Messages -------------------------------------------------------------------


@router.get(
    "/rooms/{room_id}/messages",
    tags=["messages"],
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
    room: ApiRoom,
    chat: ChatDep,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="Only messages with a lower seq.", examples=[51]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
) -> list[MessageOut]:
    # The page's own query (plain rows, oldest first), turned newest first.
    window = await chat.window(room.id, before=before, limit=limit)
    return [MessageOut.of_row(m, room_id=room.id) for m in reversed(window)]


@router.post(
    "/rooms/{room_id}/messages",
    tags=["messages"],
    summary="Post a message, delivered like one sent from a browser",
    description=(
        "The message is saved with the room's next `seq` and reaches every WebSocket in "
        "the room. Sending the same `client_id` again returns the first message."
    ),
    operation_id="post_message",
    status_code=201,
    responses={**WRITE, **NOT_FOUND, **TOO_FAST},
)
async def post_message(body: MessageIn, user: ApiUser, room: ApiRoom, chat: ChatDep) -> MessageOut:
    message = await chat.post(
        room_id=room.id, author=user, text=body.text, client_id=body.client_id
    )
    return MessageOut.of(message)


# Users ----------------------------------------------------------------------


@router.get(
    "/users",
    tags=["users"],
    summary="All users (admins)",
    operation_id="list_users",
    responses={**UNAUTHENTICATED, 403: problem("Not an admin.")},
)
async def list_users(admin: ApiAdmin, db: DbDep) -> list[UserOut]:
    return [UserOut.of(user) for user in await users.list_users(db)]


@router.patch(
    "/users/{user_id}",
    tags=["users"],
    summary="Grant or take away admin rights (admins)",
    operation_id="update_user",
    responses={**ADMIN_WRITE, **USER_NOT_FOUND, **SELF_LOCKOUT},
)
async def update_user(body: UserPatch, user_id: UserId, admin: ApiAdmin, db: DbDep) -> UserOut:
    return UserOut.of(await users.set_admin(db, user_id, body.is_admin, by=admin))


@router.delete(
    "/users/{user_id}",
    tags=["users"],
    summary="Remove a user (admins)",
    description=(
        "Removes the account with its sessions, API tokens and messages; its open "
        "sockets close with code 1008."
    ),
    operation_id="delete_user",
    status_code=204,
    response_class=Response,
    responses={**ADMIN_WRITE, **USER_NOT_FOUND, **SELF_LOCKOUT},
)
async def remove_user(user_id: UserId, admin: ApiAdmin, chat: ChatDep) -> None:
    await users.delete_user(chat.db, chat.broker, user_id, by=admin)
