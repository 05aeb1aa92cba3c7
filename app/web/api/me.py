"""/api/me: who the caller is, and their display name."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app import faces
from app.web.api.schemas import UNAUTHENTICATED, WRITE, Me, MePatch
from app.web.deps import ApiUser, DbDep

router = APIRouter(tags=["account"])


@router.get("/me", summary="The current user", responses=UNAUTHENTICATED)
async def me(user: ApiUser) -> Me:
    return Me.of(user)


@router.patch(
    "/me",
    summary="Change the caller's display name",
    description="The name shows beside the username in messages rendered from now on, "
    "the member list and direct messages. Empty clears it.",
    operation_id="update_me",
    responses=WRITE,
)
async def update_me(body: MePatch, user: ApiUser, db: DbDep) -> Me:
    try:
        user.display_name = await faces.set_display_name(db, user.id, body.display_name)
    except faces.DisplayNameError as exc:
        raise HTTPException(422, str(exc)) from exc
    return Me.of(user)
