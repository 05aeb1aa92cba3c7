"""The account page's face: the display name and the avatar, and serving avatars."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app import faces
from app.web.account import account_page_for
from app.web.deps import DbDep, FormStr, PageUser

router = APIRouter(include_in_schema=False)


@router.post("/account/profile")
async def change_display_name(
    request: Request, user: PageUser, db: DbDep, display_name: FormStr = ""
) -> Response:
    """Set (or, empty, clear) the display name shown beside the username."""
    try:
        await faces.set_display_name(db, user.id, display_name)
    except faces.DisplayNameError as exc:
        return await account_page_for(request, db, user.id, 400, error=str(exc))
    return RedirectResponse("/account?done=profile", status_code=303)
