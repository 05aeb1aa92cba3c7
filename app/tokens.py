"""API tokens: ``Authorization: Bearer <token>`` for scripts and bots.

A token is 256 random bits shown once; only its SHA-256 is stored. With that
much entropy a slow password hash adds nothing, and a plain digest lets every
request find its token with one indexed lookup. Each request looks the token
up again, so revoking one takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from app.auth import AuthError
from app.db import Database
from app.models import ApiToken, User, utcnow

PREFIX = "tr_"
SHOWN = 10  # characters of the token kept in clear, to tell tokens apart
# Touch last_used at most this often, not on every request.
LAST_USED_EVERY = timedelta(minutes=1)


class TokenNotFound(AuthError):
    def __init__(self) -> None:
        super().__init__("That user has no such token.")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(db: Database, user: User) -> tuple[ApiToken, str]:
    """A new token for ``user``: the stored row, and the token itself (never stored)."""
    token = PREFIX + secrets.token_urlsafe(32)
    async with db.write() as session:
        row = ApiToken(
            user_id=user.id, token_hash=digest(token), prefix=token[:SHOWN], created_at=utcnow()
        )
        session.add(row)
    return row, token


async def list_tokens(db: Database, user: User) -> list[ApiToken]:
    async with db.read() as session:
        rows = await session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        )
        return list(rows)


async def revoke_token(db: Database, user: User, token_id: int) -> None:
    async with db.write() as session:
        result = await session.execute(
            delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
        )
    if not result.rowcount:  # type: ignore[attr-defined]  # a DELETE's Result is a CursorResult
        raise TokenNotFound()


async def token_user(db: Database, token: str) -> User | None:
    """The owner of a live token, or None."""
    if not token.startswith(PREFIX) or len(token) > 128:
        return None
    row = await db.run_read(_token_by_hash, digest(token))
    if row is None:
        return None
    now = utcnow()
    if row.last_used is None or now - row.last_used > LAST_USED_EVERY:
        await db.run_write(_touch_token, row.id, now)  # one hop, as app.auth touches sessions
    return row.user


def _token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def _touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used=now))


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"
