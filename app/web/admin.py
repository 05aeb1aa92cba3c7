"""The admin page: rooms and users, managed with htmx.

Every action answers with its whole section re-rendered (a few dozen rows),
with the outcome or the error in it: htmx swaps only 2xx answers, so a refused
action is a 200 that shows why. The JSON API and the CLI can do the same.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse

from app import announce, invitations, rooms, users
from app.auth import AuthError
from app.errors import ChatError
from app.rooms import create_room, delete_room, update_room
from app.web.admin_bots import bots_context
from app.web.deps import ChatDep, FormStr, PageAdmin, RoomId, UserId
from app.web.limits import MAX_DESCRIPTION, MAX_ID, MAX_ROOM_NAME
from app.web.pages import page

router = APIRouter(prefix="/admin", include_in_schema=False)


async def rooms_section(
    request: Request, chat: ChatDep, *, notice: str = "", error: str = ""
) -> HTMLResponse:
    context = await rooms_context(chat)
    return page(request, "fragments/admin_rooms.html", notice=notice, error=error, **context)


async def users_section(
    request: Request, chat: ChatDep, admin: PageAdmin, *, notice: str = "", error: str = ""
) -> HTMLResponse:
    return page(
        request,
        "fragments/admin_users.html",
        users=await users.list_users(chat.db),
        me=admin,
        notice=notice,
        error=error,
    )


async def rooms_context(chat: ChatDep) -> dict[str, Any]:
    """Rooms of every kind. A DM is shown by its members only: admins see that it
    exists, never its messages (the room page stays closed to non-members)."""
    every = await chat.rooms()
    return {
        "rooms": [room for room in every if room.kind != "direct"],
        "directs": [room for room in every if room.kind == "direct"],
        "members_of": await rooms.members_by_room(
            chat.db, [room.id for room in every if room.kind != "public"]
        ),
        "online": await chat.online(),
        "max_room_name": MAX_ROOM_NAME,
        "max_description": MAX_DESCRIPTION,
    }


async def invitations_context(chat: ChatDep) -> dict[str, Any]:
    return {
        "invitations": await invitations.list_open(chat.db),
        "registration": chat.settings.registration,
        "invite_days": chat.settings.invite_days,
        "max_uses": invitations.MAX_USES,
        "max_days": invitations.MAX_DAYS,
        "new_link": None,
    }


async def invitations_section(
    request: Request, chat: ChatDep, *, notice: str = "", error: str = "", link: str = ""
) -> HTMLResponse:
    context = {**await invitations_context(chat), "new_link": link or None}
    return page(request, "fragments/admin_invitations.html", notice=notice, error=error, **context)


@router.get("")
async def admin_page(request: Request, admin: PageAdmin, chat: ChatDep) -> HTMLResponse:
    return page(
        request,
        "admin.html",
        users=await users.list_users(chat.db),
        me=admin,
        notice="",
        error="",
        shown=[],
        **await rooms_context(chat),
        **await invitations_context(chat),
        **await bots_context(chat.db),
    )


@router.post("/invitations")
async def make_invitation(
    request: Request,
    admin: PageAdmin,
    chat: ChatDep,
    uses: Annotated[int, Form(ge=1, le=invitations.MAX_USES)] = 1,
    days: Annotated[float, Form(gt=0, le=invitations.MAX_DAYS)] = 7,
) -> HTMLResponse:
    try:
        made, token = await invitations.make(chat.db, by=admin, uses=uses, days=days)
    except AuthError as exc:
        return await invitations_section(request, chat, error=str(exc))
    base = chat.settings.public_url or str(request.base_url)
    link = invitations.link(base, token)
    notice = f"Made invitation {made.id}."
    return await invitations_section(request, chat, notice=notice, link=link)


@router.delete("/invitations/{invitation_id}")
async def revoke_invitation(
    request: Request,
    admin: PageAdmin,
    chat: ChatDep,
    invitation_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> HTMLResponse:
    if not await invitations.revoke(chat.db, invitation_id):
        return await invitations_section(request, chat, error="There is no such open invitation.")
    notice = f"Revoked invitation {invitation_id}: its link no longer works."
    return await invitations_section(request, chat, notice=notice)


@router.post("/rooms")
async def add_room(
    request: Request,
    admin: PageAdmin,
    chat: ChatDep,
    name: FormStr,
    description: Annotated[str, Form()] = "",
) -> HTMLResponse:
    try:
        room = await create_room(chat.db, name=name, description=description, created_by=admin)
    except ChatError as exc:
        return await rooms_section(request, chat, error=str(exc))
    await announce.room_created(chat.broker, room)
    return await rooms_section(request, chat, notice=f"Created room {room.name}.")


@router.patch("/rooms/{room_id}")
async def change_room(
    request: Request,
    admin: PageAdmin,
    chat: ChatDep,
    room_id: RoomId,
    name: FormStr,
    description: Annotated[str, Form()] = "",
) -> HTMLResponse:
    try:
        room = await update_room(chat.db, room_id, name=name, description=description)
    except ChatError as exc:
        return await rooms_section(request, chat, error=str(exc))
    return await rooms_section(request, chat, notice=f"Saved room {room.name}.")


@router.delete("/rooms/{room_id}")
async def remove_room(
    request: Request, admin: PageAdmin, chat: ChatDep, room_id: RoomId
) -> HTMLResponse:
    try:
        await delete_room(chat.db, chat.broker, room_id)
    except ChatError as exc:
        return await rooms_section(request, chat, error=str(exc))
    return await rooms_section(request, chat, notice="Deleted the room and its messages.")


@router.patch("/users/{user_id}")
async def change_user(
    request: Request,
    admin: PageAdmin,
    chat: ChatDep,
    user_id: UserId,
    is_admin: Annotated[bool, Form()],
) -> HTMLResponse:
    try:
        user = await users.set_admin(chat.db, user_id, is_admin, by=admin)
    except AuthError as exc:
        return await users_section(request, chat, admin, error=str(exc))
    state = "now an admin" if user.is_admin else "no longer an admin"
    return await users_section(request, chat, admin, notice=f"{user.username} is {state}.")


@router.delete("/users/{user_id}")
async def remove_user(
    request: Request, admin: PageAdmin, chat: ChatDep, user_id: UserId
) -> HTMLResponse:
    try:
        await users.delete_user(chat.db, chat.broker, chat.storage, user_id, by=admin)
    except AuthError as exc:
        return await users_section(request, chat, admin, error=str(exc))
    return await users_section(request, chat, admin, notice="Removed the user.")
