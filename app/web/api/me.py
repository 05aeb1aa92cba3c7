"""/api/me: who the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from app.web.api.schemas import UNAUTHENTICATED, Me
from app.web.deps import ApiUser

router = APIRouter(tags=["account"])


@router.get("/me", summary="The current user", responses=UNAUTHENTICATED)
async def me(user: ApiUser) -> Me:
    return Me(id=user.id, username=user.username, is_admin=user.is_admin)
