"""Passwords, sessions, CSRF tokens and usernames.

The session cookie holds only a signed, opaque session id; the session itself
lives in the database, so logging out really ends it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import anyio.to_thread
from itsdangerous import BadSignature, URLSafeSerializer
from passlib.context import CryptContext
from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession

from app.db import Database
from app.models import MAX_ADDRESS, MAX_USER_AGENT, Session, User, utcnow
from app.settings import Settings

SESSION_COOKIE = "talkroom_session"
CSRF_COOKIE = "talkroom_csrf"
# Over https the cookies carry this prefix: browsers then keep them only when they
# are Secure, have Path=/ and no Domain, so a sibling subdomain (or a network
# attacker over plain http) cannot plant or overwrite them.
HOST_PREFIX = "__Host-"
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
MIN_PASSWORD = 8
# Longer passwords are refused before hashing, so a 1 MB "password" costs nothing.
MAX_PASSWORD = 1024
# Touch last_seen at most this often, not on every request.
LAST_SEEN_EVERY = timedelta(minutes=1)


class AuthError(Exception):
    """A problem the user caused and can fix; the message is shown to them."""


class WrongPassword(AuthError):
    def __init__(self) -> None:
        super().__init__("The current password is wrong.")


def check_username(username: str) -> str:
    if not USERNAME_RE.fullmatch(username):
        raise AuthError("Usernames are 3–32 characters: letters, digits, _ . and -.")
    return username


def cookie_name(base: str, *, secure: bool) -> str:
    return HOST_PREFIX + base if secure else base


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"Passwords need at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise AuthError(f"Passwords can be at most {MAX_PASSWORD} characters.")
    return password


class Passwords:
    """argon2id hashing, off the event loop and with bounded concurrency."""

    @classmethod
    def of(cls, settings: Settings, concurrency: int | None = None) -> Passwords:
        return cls(
            settings.hash_concurrency if concurrency is None else concurrency,
            memory_kib=settings.password_memory_kib,
            passes=settings.password_passes,
            lanes=settings.password_lanes,
        )

    def __init__(self, concurrency: int, *, memory_kib: int, passes: int, lanes: int) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__memory_cost=memory_kib,
            argon2__rounds=passes,
            argon2__parallelism=lanes,
        )
        self._slots = asyncio.Semaphore(concurrency)
        # Verified against when the user does not exist, so both cases cost the same.
        self._dummy = self._context.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await anyio.to_thread.run_sync(self._context.hash, password)

    async def verify(self, password: str, hashed: str | None) -> bool:
        if len(password) > MAX_PASSWORD:
            return False
        async with self._slots:
            ok = await anyio.to_thread.run_sync(
                self._context.verify, password, hashed or self._dummy
            )
        return ok and hashed is not None


class Signer:
    """Signs cookie values with the application secret."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeSerializer(secret, salt="talkroom.session")
        self._csrf = URLSafeSerializer(secret, salt="talkroom.csrf")

    def session_cookie(self, session_id: str) -> str:
        return self._session.dumps(session_id)

    def session_id(self, cookie: str | None) -> str | None:
        return _loads(self._session, cookie)

    def csrf_cookie(self, token: str) -> str:
        return self._csrf.dumps(token)

    def csrf_token(self, cookie: str | None) -> str | None:
        return _loads(self._csrf, cookie)


def _loads(serializer: URLSafeSerializer, value: str | None) -> str | None:
    if not value:
        return None
    try:
        loaded = serializer.loads(value)
    except BadSignature:
        return None
    return loaded if isinstance(loaded, str) else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


# Held by a PostgreSQL transaction that may create the first account (any number
# of our own choosing, the same in every process).
FIRST_ACCOUNT_LOCK = 0x7A1C_0001

# Called inside the account's transaction with whether it is the first account: it
# may refuse (raise AuthError) or claim something (an invitation's use) atomically
# with the account, so a refusal or a failed insert leaves nothing behind.
Claim = Callable[[AsyncSession, bool], Awaitable[None]]


async def is_first_account(session: AsyncSession) -> bool:
    """No account exists yet, decided race-free inside a write transaction: SQLite's
    BEGIN IMMEDIATE already serializes writers; on PostgreSQL two transactions would
    each see an empty table, so the one that finds it empty takes a transaction-scoped
    lock and looks again (the second then sees the first's committed row)."""
    if await session.scalar(select(User.id).limit(1)) is not None:
        return False
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": FIRST_ACCOUNT_LOCK}
        )
        return await session.scalar(select(User.id).limit(1)) is None
    return True


async def create_user(
    db: Database,
    passwords: Passwords,
    *,
    username: str,
    password: str,
    is_admin: bool = False,
    claim: Claim | None = None,
) -> User:
    """A new account. The first account on an empty database is an admin (first run:
    someone must be able to make rooms and invite people without a terminal)."""
    check_username(username)
    check_password(password)
    hashed = await passwords.hash(password)
    async with db.write() as session:
        taken = await session.scalar(
            select(User.id).where(User.username_key == username.casefold())
        )
        if taken is not None:
            raise AuthError("That username is taken.")
        first = await is_first_account(session)
        if claim is not None:
            await claim(session, first)
        user = User(
            username=username,
            username_key=username.casefold(),
            password_hash=hashed,
            is_admin=is_admin or first,
        )
        session.add(user)
    return user


async def authenticate(
    db: Database, passwords: Passwords, *, username: str, password: str
) -> User | None:
    user = None
    # A name no account can have (a NUL byte would even fail on PostgreSQL) is not
    # looked up, but the password is still hashed: the answer takes as long.
    if USERNAME_RE.fullmatch(username):
        async with db.read() as session:
            user = await session.scalar(
                select(User).where(User.username_key == username.casefold())
            )
    # A bot has no password and cannot log in: its token is for the API only.
    hashed = user.password_hash if user and not user.is_bot else None
    if await passwords.verify(password, hashed):
        return user
    return None


async def start_session(
    db: Database, settings: Settings, user: User, *, user_agent: str = "", address: str = ""
) -> str:
    """A fresh session id at every login, so a planted id never becomes a login."""
    session_id = new_token()
    now = utcnow()
    async with db.write() as session:
        session.add(
            Session(
                id=session_id,
                user_id=user.id,
                created_at=now,
                last_seen=now,
                expires_at=now + timedelta(seconds=settings.session_max_age),
                # Whatever the browser sent, cut to fit and without NULs (PostgreSQL
                # refuses them in text); it is only ever shown back, escaped.
                user_agent=user_agent.replace("\x00", "")[:MAX_USER_AGENT],
                address=address[:MAX_ADDRESS],
            )
        )
    return session_id


async def user_sessions(db: Database, user_id: int) -> list[Session]:
    """The user's live sessions, most recently used first."""
    async with db.read() as session:
        rows = await session.scalars(
            select(Session)
            .where(Session.user_id == user_id, Session.expires_at > utcnow())
            .order_by(Session.last_seen.desc())
        )
        return list(rows)


async def end_sessions(db: Database, user_id: int, session_ids: list[str]) -> list[str]:
    """End these sessions of the user (another user's ids are ignored); the ids ended."""
    if not session_ids:
        return []
    async with db.write() as session:
        ended = await session.scalars(
            delete(Session)
            .where(Session.user_id == user_id, Session.id.in_(session_ids))
            .returning(Session.id)
        )
        return list(ended)


def session_tag(session_id: str) -> str:
    """A short name for a session that can travel between workers: the id itself
    is a bearer secret and never goes over Redis."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:16]


async def end_session(db: Database, session_id: str) -> None:
    async with db.write() as session:
        await session.execute(delete(Session).where(Session.id == session_id))


async def change_password(
    db: Database, passwords: Passwords, user: User, *, current: str, new: str
) -> None:
    """Check the current password, store the new one and end every session of the
    user; the caller starts a fresh one for the browser that asked."""
    check_password(new)
    async with db.read() as session:
        hashed = await session.scalar(select(User.password_hash).where(User.id == user.id))
    if hashed is None or not await passwords.verify(current, hashed):
        raise WrongPassword()
    new_hash = await passwords.hash(new)
    async with db.write() as session:
        await session.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        await session.execute(delete(Session).where(Session.user_id == user.id))


async def session_user(db: Database, settings: Settings, session_id: str | None) -> User | None:
    """The user of a live session; expired and idle sessions count as none."""
    if not session_id:
        return None
    row = await db.run_read(_get_session, session_id)
    if row is None:
        return None
    now = utcnow()
    idle_limit = row.last_seen + timedelta(seconds=settings.session_idle)
    if row.expires_at <= now or idle_limit <= now:
        await end_session(db, session_id)
        return None
    if now - row.last_seen > LAST_SEEN_EVERY:
        # In the writer's one hop (Database.run_write): through aiosqlite a write holds
        # SQLite's lock across event-loop turns, and a storm of handshakes (each
        # touching its session) then held every pooled connection waiting for it.
        await db.run_write(_touch_session, session_id, now)
    return row.user


def _get_session(orm: OrmSession, session_id: str) -> Session | None:
    return orm.get(Session, session_id)  # with its user (a joined load)


def _touch_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(update(Session).where(Session.id == session_id).values(last_seen=now))
