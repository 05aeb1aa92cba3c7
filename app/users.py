"""Account administration: list users, grant or take admin rights, remove users.

Used by the JSON API, the admin page and the CLI alike.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from starlette import status

from app import announce, removal
from app.auth import AuthError, session_tag
from app.backends import Broker
from app.db import Database
from app.files.storage import Storage
from app.models import User

logger = logging.getLogger(__name__)


class UserNotFound(AuthError):
    def __init__(self) -> None:
        super().__init__("There is no such user.")


class SelfLockout(AuthError):
    """Refused so that an admin cannot lock themselves (and maybe everyone) out."""


async def list_users(db: Database) -> list[User]:
    async with db.read() as session:
        return list(await session.scalars(select(User).order_by(User.username_key)))


async def get_user(db: Database, user_id: int) -> User:
    async with db.read() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def find_user(db: Database, username: str) -> User:
    async with db.read() as session:
        user = await session.scalar(select(User).where(User.username_key == username.casefold()))
    if user is None:
        raise UserNotFound()
    return user


async def set_admin(db: Database, user_id: int, is_admin: bool, *, by: User | None = None) -> User:
    if by is not None and by.id == user_id and not is_admin:
        raise SelfLockout("You cannot take away your own admin rights.")
    async with db.write() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise UserNotFound()
        user.is_admin = is_admin
    logger.info("User %s is %s an admin.", user_id, "now" if is_admin else "no longer")
    return user


async def delete_user(
    db: Database, broker: Broker, storage: Storage, user_id: int, *, by: User | None = None
) -> None:
    """Remove a user with their sessions and tokens (the foreign keys cascade); their
    messages stay as tombstones and their reactions go, each a change every open
    page sees (app.removal). Then close their open sockets, which a session check
    no longer guards."""
    if by is not None and by.id == user_id:
        raise SelfLockout("You cannot remove yourself.")
    removed = await removal.remove_user(db, user_id)
    if removed is None:
        raise UserNotFound()
    logger.info("Removed user %s (changes in %d rooms).", user_id, len(removed.rooms))
    # Committed: the rows are gone, so no one can fetch the files any more.
    await storage.delete(*removed.files)
    await removal.announce_removal(db, broker, removed)
    await close_sockets(broker, user_id)


async def close_sockets(broker: Broker, user_id: int) -> None:
    """Close the user's open sockets on every worker with 1008: a socket checks the
    session only at its handshake, so ending sessions alone would leave them open
    (until app.access finds them, should the event be lost)."""
    await announce.close_user(broker, user_id, status.WS_1008_POLICY_VIOLATION)


async def close_session_sockets(broker: Broker, session_id: str) -> None:
    """Close the sockets opened with one session (a logout), on every worker."""
    await announce.close_session(broker, session_tag(session_id), status.WS_1008_POLICY_VIOLATION)


async def user_named(db: Database, username: str) -> User | None:
    async with db.read() as session:
        return await session.scalar(select(User).where(User.username_key == username.casefold()))


async def name_suggestions(db: Database, prefix: str, limit: int = 8) -> list[str]:
    """Usernames starting with ``prefix`` (any case), shortest first."""
    key = prefix.casefold()
    if not key or len(key) > 32 or not all(c.isalnum() or c in "_.-" for c in key):
        return []
    pattern = key.replace("_", r"\_") + "%"
    query = (
        select(User.username)
        .where(User.username_key.like(pattern, escape="\\"))
        .order_by(User.username_key)
        .limit(limit)
    )
    async with db.read() as session:
        return list(await session.scalars(query))
