"""The webhook delivery queue: rows in webhook_deliveries, so a restart loses none.

Rows are added in the message's own transaction (app.writer calls ``enqueue``).
Each bot's deliveries go one at a time, oldest first: only a bot's oldest open
row (its head) can be claimed, and only while nobody holds it. A claim is a
lease (``claimed_until``): a worker that dies mid-delivery leaves the row to be
taken again once the lease runs out; one that stops cleanly gives it back.
On PostgreSQL workers claim with ``FOR UPDATE SKIP LOCKED``; on SQLite the
claim is one write transaction (``BEGIN IMMEDIATE``), so one claimer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from app.db import Database
from app.models import RoomMember, User, WebhookDelivery, utcnow

PENDING, CLAIMED, DONE, FAILED, DROPPED = "pending", "claimed", "done", "failed", "dropped"
OPEN = (PENDING, CLAIMED)
D = cast(Table, WebhookDelivery.__table__)
ERROR_CHARS = 300


@dataclass(frozen=True)
class Saved:
    """What enqueue needs of a message just saved."""

    id: int
    room_id: int
    author_id: int
    author_is_bot: bool
    mentions: str  # usernames, space-separated
    room_kind: str


def enqueue(conn: Connection, messages: Sequence[Saved]) -> int:
    """Add a delivery for each bot with a webhook that a message mentions, or that
    is in the direct room it was sent in. A bot's own messages tell nobody, so
    two bots cannot talk each other into a loop. The rows added. Synchronous: it
    runs in the writer's transaction (app.db.Database.run_write)."""
    messages = [m for m in messages if not m.author_is_bot]
    keys = {name.casefold() for m in messages for name in m.mentions.split()}
    direct = {m.room_id for m in messages if m.room_kind == "direct"}
    if not keys and not direct:
        return 0
    bots_by_key: dict[str, int] = {}
    if keys:
        rows = conn.execute(
            select(User.username_key, User.id).where(
                User.username_key.in_(keys), User.is_bot, User.webhook_url.is_not(None)
            )
        )
        bots_by_key = {row.username_key: row.id for row in rows}
    in_room: dict[int, set[int]] = {}
    if direct:
        rows = conn.execute(
            select(RoomMember.room_id, RoomMember.user_id)
            .join(User, User.id == RoomMember.user_id)
            .where(RoomMember.room_id.in_(direct), User.is_bot, User.webhook_url.is_not(None))
        )
        for row in rows:
            in_room.setdefault(row.room_id, set()).add(row.user_id)
    now = utcnow()
    new = []
    for m in messages:
        bots = {bots_by_key[k] for k in m.mentions.casefold().split() if k in bots_by_key}
        bots |= in_room.get(m.room_id, set())
        bots.discard(m.author_id)
        new += [
            {"bot_id": bot, "message_id": m.id, "room_id": m.room_id}
            | {"status": PENDING, "attempts": 0, "next_at": now, "created_at": now}
            | {"last_error": ""}
            for bot in sorted(bots)
        ]
    if new:
        conn.execute(insert(D), new)
    return len(new)


@dataclass(frozen=True, order=True)
class Claimed:
    id: int
    bot_id: int
    message_id: int
    room_id: int
    attempts: int


def _claimable(now: datetime) -> ColumnElement[bool]:
    due = and_(D.c.status == PENDING, D.c.next_at <= now)
    lapsed = and_(D.c.status == CLAIMED, D.c.claimed_until < now)
    return or_(due, lapsed)


async def any_due(db: Database) -> bool:
    """A cheap read first, so an idle queue never takes SQLite's write lock."""
    async with db.read() as session:
        found = await session.scalar(select(D.c.id).where(_claimable(utcnow())).limit(1))
    return found is not None


async def claim(db: Database, *, lease: float, limit: int, postgres: bool) -> list[Claimed]:
    """Take up to ``limit`` due deliveries, at most one per bot (its head)."""
    return await db.run_write(_claim, lease, limit, postgres)


def _claim(conn: Connection, lease: float, limit: int, postgres: bool) -> list[Claimed]:
    now = utcnow()
    head = D.alias("head")
    oldest_open = (
        select(func.min(head.c.id))
        .where(head.c.bot_id == D.c.bot_id, head.c.status.in_(OPEN))
        .scalar_subquery()
    )
    query = (
        select(D.c.id).where(_claimable(now), D.c.id == oldest_open).order_by(D.c.id).limit(limit)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    ids = list(conn.scalars(query))
    if not ids:
        return []
    # The same test again in the UPDATE: a row is claimed by one worker only.
    rows = conn.execute(
        update(D)
        .where(D.c.id.in_(ids), _claimable(now))
        .values(status=CLAIMED, claimed_until=now + timedelta(seconds=lease))
        .returning(D.c.id, D.c.bot_id, D.c.message_id, D.c.room_id, D.c.attempts)
    )
    return sorted(Claimed(*row) for row in rows)


async def finish(
    db: Database, delivery: Claimed, *, ok: bool, status: int | None, error: str = ""
) -> None:
    """Record a delivery that was made (or failed for good)."""
    values = {"status": DONE if ok else FAILED, "finished_at": utcnow()}
    await db.run_write(_record, delivery, values, status, error)


async def retry(
    db: Database, delivery: Claimed, *, delay: float, status: int | None, error: str
) -> None:
    """Put a failed delivery back, due again after ``delay`` seconds."""
    values = {"status": PENDING, "next_at": utcnow() + timedelta(seconds=delay)}
    await db.run_write(_record, delivery, values, status, error)


def _record(
    conn: Connection, delivery: Claimed, values: dict[str, Any], status: int | None, error: str
) -> None:
    """An attempt's outcome on a delivery this worker still holds."""
    conn.execute(
        update(D)
        .where(D.c.id == delivery.id, D.c.status == CLAIMED)
        .values(
            **values,
            attempts=delivery.attempts + 1,
            claimed_until=None,
            last_status=status,
            last_error=error[:ERROR_CHARS],
        )
    )


async def release(db: Database, ids: Sequence[int]) -> None:
    """Give back unfinished claims (a clean shutdown): due again at once."""
    if not ids:
        return
    await db.run_write(
        Connection.execute,
        update(D)
        .where(D.c.id.in_(list(ids)), D.c.status == CLAIMED)
        .values(status=PENDING, claimed_until=None),
    )


async def trim(db: Database, per_bot: int) -> tuple[int, int]:
    """Drop each bot's oldest waiting deliveries beyond ``per_bot`` (a bot whose
    endpoint is down, mentioned without end). (rows dropped, rows still waiting)."""
    async with db.read() as session:
        counts = (
            await session.execute(
                select(D.c.bot_id, func.count()).where(D.c.status == PENDING).group_by(D.c.bot_id)
            )
        ).all()
    waiting = sum(n for _, n in counts)
    over = [(bot, n - per_bot) for bot, n in counts if n > per_bot]
    dropped = 0
    for bot, excess in over:
        oldest = (
            select(D.c.id)
            .where(D.c.bot_id == bot, D.c.status == PENDING)
            .order_by(D.c.id)
            .limit(excess)
        )
        dropped += await db.run_write(
            _rowcount,
            update(D)
            .where(D.c.id.in_(oldest), D.c.status == PENDING)
            .values(status=DROPPED, finished_at=utcnow(), last_error="queue full"),
        )
    return dropped, waiting - dropped


def _rowcount(conn: Connection, statement: Executable) -> int:
    return int(conn.execute(statement).rowcount)


async def recent(db: Database, bot_ids: Sequence[int], per_bot: int = 5) -> dict[int, list[Any]]:
    """Each bot's latest deliveries, newest first, for the admin page."""
    found: dict[int, list[Any]] = {}
    async with db.read() as session:
        for bot_id in bot_ids:
            rows = await session.execute(
                select(D).where(D.c.bot_id == bot_id).order_by(D.c.id.desc()).limit(per_bot)
            )
            found[bot_id] = list(rows)
    return found


async def prune(db: Database, older_than: timedelta) -> int:
    """Forget finished deliveries (done, failed, dropped) older than this."""
    cutoff = utcnow() - older_than
    return await db.run_write(
        _rowcount,
        delete(D).where(D.c.status.in_((DONE, FAILED, DROPPED)), D.c.finished_at < cutoff),
    )
