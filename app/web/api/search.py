"""/api/search: messages in every room the caller can read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from app import access
from app.search.query import MAX_QUERY
from app.web.api.schemas import NO_NUL, READ, SearchHit, problem
from app.web.deps import NO_SUCH_ROOM, ApiUser, ChatDep
from app.web.limits import MAX_ID, MAX_PAGE_SIZE, PAGE_SIZE

router = APIRouter(tags=["search"])

SearchText = Annotated[
    str,
    Query(
        max_length=MAX_QUERY,
        pattern=NO_NUL,
        description="Words (each matches by prefix, ignoring case and accents), "
        '"quoted phrases", and the filters `from:USERNAME` and `in:ROOM`. Any other '
        "punctuation is plain text.",
        examples=["café from:alice"],
    ),
]


@router.get(
    "/search",
    summary="Search the messages of every room the caller can read",
    description=(
        "Newest first. Page back by passing the lowest `message_id` of a page as "
        "`before` for the next one; an empty page is the end. Rooms the caller cannot "
        "read never appear."
    ),
    operation_id="search_messages",
    responses={**READ, 404: problem("`room_id` names no room the caller can read.")},
)
async def search_messages(
    user: ApiUser,
    chat: ChatDep,
    q: SearchText,
    room_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this room.", examples=[1])
    ] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Only messages with a lower id.", examples=[42]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = PAGE_SIZE,
) -> list[SearchHit]:
    if room_id is not None and not await access.can_read(chat.db, user, room_id):
        raise HTTPException(404, NO_SUCH_ROOM)
    hits = await chat.search(user, q, room_id=room_id, before=before, limit=limit)
    return [
        SearchHit(
            room_id=h.room_id,
            room_name=h.room_name,
            message_id=h.message_id,
            seq=h.seq,
            author=h.author,
            snippet=str(h.snippet),
            created_at=h.created_at,
        )
        for h in hits
    ]
