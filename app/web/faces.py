"""The account page's face: the display name and the avatar, and serving avatars."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from app import avatars, faces
from app.models import MAX_ID, User
from app.web.account import account_page_for
from app.web.body_limit import FORM_OVERHEAD
from app.web.deps import DbDep, FormStr, PageUser, api_user, cookie_user

router = APIRouter(include_in_schema=False)

AVATAR_FORM = "/account/avatar"
BODY_LIMITS = {
    AVATAR_FORM: (avatars.MAX_BYTES + FORM_OVERHEAD, avatars.TooLarge().args[0]),
}
# An avatar's URL names its version: that one may be cached for good by the browser
# (never by a shared cache: only logged-in users may see it); another is revalidated.
CACHED = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"


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


@router.post(AVATAR_FORM)
async def upload_avatar(
    request: Request, user: PageUser, db: DbDep, avatar: Annotated[UploadFile, File()]
) -> Response:
    """A new avatar from an upload (its size limited by app.web.body_limit first)."""
    data = await avatar.read(avatars.MAX_BYTES + 1)
    try:
        made = await avatars.make_off_loop(data)
    except avatars.AvatarError as exc:
        status = 413 if isinstance(exc, avatars.TooLarge) else 400
        return await account_page_for(request, db, user.id, status, error=str(exc))
    await avatars.store(db, user.id, made)
    return RedirectResponse("/account?done=avatar", status_code=303)


@router.post("/account/avatar/remove")
async def remove_avatar(user: PageUser, db: DbDep) -> Response:
    await avatars.remove(db, user.id)
    return RedirectResponse("/account?done=no-avatar", status_code=303)


async def viewer(conn: Request) -> User:
    """Any logged-in user (the page's cookie, or an API token): else 401."""
    user = await cookie_user(conn) if "authorization" not in conn.headers else None
    return user if user is not None else await api_user(conn)


@router.get("/avatars/{user_id}")
async def avatar_image(request: Request, user_id: int, db: DbDep, v: str = "") -> Response:
    await viewer(request)
    found = await avatars.load(db, user_id) if 1 <= user_id <= MAX_ID else None
    if found is None:
        raise HTTPException(404, "No such avatar.")
    key = avatars.key_of(found.image)
    headers = {
        "Cache-Control": CACHED if v == key else REVALIDATE,
        "ETag": f'"{key}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": "inline",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.image, media_type=found.content_type, headers=headers)
