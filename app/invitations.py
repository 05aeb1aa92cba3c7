"""Invitations: sign-up links an admin makes (``TALKROOM_REGISTRATION=invite``).

A link is ``/invite/{token}``: it lets its holder create an account, and nothing
else (it logs no one in and names no account). Only the token's SHA-256 is
stored. A use is taken in the new account's own transaction, with one UPDATE
that checks every condition, so two people racing for the last use of a link
cannot both get an account. Used by the pages, the admin page and the CLI.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import AuthError, Claim
from app.db import Database
from app.models import MAX_ID, Invitation, User, utcnow

# secrets.token_urlsafe(24): 32 URL-safe characters. Anything else names no
# invitation and is not looked up.
TOKEN_BYTES = 24
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
MAX_USES = 1000
MAX_DAYS = 365


class InvitationError(AuthError):
    """The link cannot make an account; ``status`` is the page's HTTP status."""

    status = 400


class InvitationUnknown(InvitationError):
    status = 404

    def __init__(self) -> None:
        super().__init__(
            "This invitation link is not valid. Check that it was copied whole, "
            "or ask an admin for a new one."
        )


class InvitationUsedUp(InvitationError):
    def __init__(self) -> None:
        super().__init__("This invitation link has been used up. Ask an admin for a new one.")


class InvitationExpired(InvitationError):
    def __init__(self, when: datetime) -> None:
        super().__init__(
            f"This invitation link expired on {when:%Y-%m-%d at %H:%M} UTC. "
            "Ask an admin for a new one."
        )


class InvitationRevoked(InvitationError):
    def __init__(self) -> None:
        super().__init__("This invitation link was withdrawn. Ask an admin for a new one.")


class InvitationNeeded(AuthError):
    """Sign-up without a link while registration is by invitation."""

    status = 403

    def __init__(self) -> None:
        super().__init__("Sign-up here is by invitation: ask an admin for a link.")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_limits(uses: int, days: float) -> None:
    if not 1 <= uses <= MAX_USES:
        raise AuthError(f"An invitation allows 1–{MAX_USES} sign-ups.")
    if not 0 < days <= MAX_DAYS:
        raise AuthError(f"An invitation lasts more than 0 and at most {MAX_DAYS} days.")


async def make(db: Database, *, by: User | None, uses: int, days: float) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once: only its hash is kept)."""
    check_limits(uses, days)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    async with db.write() as session:
        invitation = Invitation(
            token_hash=digest(token),
            created_by=by.id if by else None,
            uses=uses,
            used=0,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        session.add(invitation)
    return invitation, token


def link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/invite/{token}"


def refusal(invitation: Invitation | None, now: datetime) -> InvitationError:
    """Why ``invitation`` makes no account now (None: no such link)."""
    if invitation is None:
        return InvitationUnknown()
    if invitation.revoked_at is not None:
        return InvitationRevoked()
    if invitation.expires_at <= now:
        return InvitationExpired(invitation.expires_at)
    return InvitationUsedUp()


def usable(invitation: Invitation | None, now: datetime) -> bool:
    return (
        invitation is not None
        and invitation.revoked_at is None
        and invitation.expires_at > now
        and invitation.used < invitation.uses
    )


async def check(db: Database, token: str) -> Invitation:
    """The invitation of a link that can make an account now, else its refusal."""
    invitation = None
    if TOKEN_RE.fullmatch(token):
        async with db.read() as session:
            invitation = await session.scalar(
                select(Invitation).where(Invitation.token_hash == digest(token))
            )
    now = utcnow()
    if invitation is None or not usable(invitation, now):
        raise refusal(invitation, now)
    return invitation


async def take_use(session: AsyncSession, token: str) -> None:
    """Take one use of the link inside the account's transaction, or refuse."""
    if not TOKEN_RE.fullmatch(token):
        raise InvitationUnknown()
    now = utcnow()
    hashed = digest(token)
    taken = await session.execute(
        update(Invitation)
        .where(
            Invitation.token_hash == hashed,
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
            Invitation.used < Invitation.uses,
        )
        .values(used=Invitation.used + 1)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult
        found = await session.scalar(select(Invitation).where(Invitation.token_hash == hashed))
        raise refusal(found, now)


def sign_up_claim(token: str | None, registration: str) -> Claim:
    """What a sign-up must hold: with a link, one of its uses; without one, open
    registration, or the very first account (first run: someone must be the admin)."""

    async def claim(session: AsyncSession, first: bool) -> None:
        if token is not None:
            await take_use(session, token)
        elif registration != "open" and not first:
            raise InvitationNeeded()

    return claim


async def list_open(db: Database) -> list[Invitation]:
    """Invitations that can still make an account, newest first."""
    now = utcnow()
    async with db.read() as session:
        found = await session.scalars(
            select(Invitation)
            .where(
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
                Invitation.used < Invitation.uses,
            )
            .order_by(Invitation.id.desc())
        )
        return list(found)


async def revoke(db: Database, invitation_id: int) -> bool:
    """Withdraw an invitation; False if there is none with that id (or it was already)."""
    if not 0 < invitation_id <= MAX_ID:
        return False  # no such row; SQLite would raise OverflowError on a huge id
    async with db.write() as session:
        done = await session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id, Invitation.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def anyone_registered(db: Database) -> bool:
    async with db.read() as session:
        return await session.scalar(select(User.id).limit(1)) is not None
