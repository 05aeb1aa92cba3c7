"""/api/users: list users, grant or take away admin rights, remove users (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app import users
from app.web.api.schemas import (
    ADMIN_WRITE,
    SELF_LOCKOUT,
    UNAUTHENTICATED,
    USER_NOT_FOUND,
    UserOut,
    UserPatch,
    problem,
)
from app.web.deps import ApiAdmin, ChatDep, DbDep, UserId

router = APIRouter(tags=["users"])


@router.get(
    "/users",
    summary="All users (admins)",
    operation_id="list_users",
    responses={**UNAUTHENTICATED, 403: problem("Not an admin.")},
)
async def list_users(admin: ApiAdmin, db: DbDep) -> list[UserOut]:
    return [UserOut.of(user) for user in await users.list_users(db)]


@router.patch(
    "/users/{user_id}",
    summary="Grant or take away admin rights (admins)",
    operation_id="update_user",
    responses={**ADMIN_WRITE, **USER_NOT_FOUND, **SELF_LOCKOUT},
)
async def update_user(body: UserPatch, user_id: UserId, admin: ApiAdmin, db: DbDep) -> UserOut:
    return UserOut.of(await users.set_admin(db, user_id, body.is_admin, by=admin))


@router.delete(
    "/users/{user_id}",
    summary="Remove a user (admins)",
    description=(
        "Removes the account with its sessions and API tokens; its open sockets close "
        "with code 1008. Its messages stay as tombstones (`deleted`, no text, no "
        "author) and its reactions are taken back: each is a change with its room's "
        "next `seq`, which open sockets receive in order and a resume with `?after=` "
        "finds, as for a delete or an unreact by hand."
    ),
    operation_id="delete_user",
    status_code=204,
    response_class=Response,
    responses={**ADMIN_WRITE, **USER_NOT_FOUND, **SELF_LOCKOUT},
)
async def remove_user(user_id: UserId, admin: ApiAdmin, chat: ChatDep) -> None:
    await users.delete_user(chat.db, chat.broker, chat.storage, user_id, by=admin)
