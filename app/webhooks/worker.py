"""The delivery worker: one asyncio task per process, started by the app's lifespan.

It claims due deliveries (app.webhooks.queue), sends each (app.webhooks.send)
and posts a reply as the bot through ``Chat.post``, the one path every message
takes. A reply's client id is the delivery's, so a delivery made twice (a
worker killed after the POST, before recording it) still posts one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app import access, metrics
from app.chat import Chat
from app.db import unavailable
from app.errors import ChatError, RateLimited
from app.models import Message, Room, User
from app.settings import Settings
from app.webhooks import queue, send
from app.webhooks.urls import WebhookURLError, resolve

logger = logging.getLogger(__name__)
# Finished deliveries are kept a week (the admin page shows the latest), then go.
KEEP_FINISHED = timedelta(days=7)
PRUNE_EVERY = 600.0


class Worker:
    def __init__(self, chat: Chat, settings: Settings) -> None:
        self.chat = chat
        self.db = chat.db
        self.settings = settings
        self.postgres = not settings.is_sqlite
        # Longer than any attempt can take, so a live worker never loses its claim.
        self.lease = 2 * settings.webhook_timeout + 10
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._next_prune = 0.0

    async def run(self) -> None:
        async with send.new_client() as client:
            try:
                while True:
                    try:
                        await self._round(client)
                    except Exception as exc:
                        if not unavailable(exc):
                            logger.exception("Webhook round failed; trying again.")
                        else:  # an outage, not a bug: the next round retries
                            logger.warning("Webhooks wait for the database: %s", exc)
                    await asyncio.sleep(self.settings.webhook_poll)
            finally:
                await self._stop()

    async def _round(self, client: httpx.AsyncClient) -> None:
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY
            await queue.prune(self.db, KEEP_FINISHED)
        dropped, waiting = await queue.trim(self.db, self.settings.webhook_queue)
        if dropped:
            metrics.WEBHOOK_DELIVERIES.labels("dropped").inc(dropped)
            logger.warning("Dropped %d webhook deliveries: their bots' queues were full.", dropped)
        metrics.WEBHOOK_QUEUE.set(waiting)
        free = self.settings.webhook_concurrency - len(self._inflight)
        if free <= 0 or not await queue.any_due(self.db):
            return
        claimed = await queue.claim(self.db, lease=self.lease, limit=free, postgres=self.postgres)
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(client, delivery), name="webhook")
            self._inflight[delivery.id] = task
            task.add_done_callback(functools.partial(self._landed, delivery.id))

    def _landed(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(delivery_id, None)

    async def _stop(self) -> None:
        """Cancel what is in flight and give its rows back, due at once."""
        tasks = dict(self._inflight)
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await queue.release(self.db, list(tasks))

    async def _deliver(self, client: httpx.AsyncClient, delivery: queue.Claimed) -> None:
        try:
            await self._attempt(client, delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("Webhook delivery %s failed.", delivery.id)
            await self._failed(delivery, None, f"internal error: {type(exc).__name__}", True)

    async def _attempt(self, client: httpx.AsyncClient, delivery: queue.Claimed) -> None:
        found = await self._load(delivery)
        if found is None:
            await queue.finish(self.db, delivery, ok=False, status=None, error="bot gone")
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
            return
        bot, message, room = found
        if message.author is None:
            # Its author was removed since: a tombstone, with nothing to tell.
            await queue.finish(self.db, delivery, ok=False, status=None, error="message gone")
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
            return
        if not bot.webhook_url or not bot.webhook_secret:
            await queue.finish(self.db, delivery, ok=False, status=None, error="no webhook")
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
            return
        try:
            target = await resolve(
                bot.webhook_url, allow_private=self.settings.webhook_allow_private
            )
        except WebhookURLError as exc:
            await self._failed(delivery, None, str(exc), False)
            return
        started = time.perf_counter()
        outcome = await send.post(
            client,
            target,
            payload(message, room),
            secret=bot.webhook_secret,
            delivery_id=delivery.id,
            deadline=self.settings.webhook_timeout,
            max_reply=self.settings.webhook_max_reply,
        )
        metrics.WEBHOOK_LATENCY.observe(time.perf_counter() - started)
        if not outcome.ok:
            await self._failed(delivery, outcome.status, outcome.error, outcome.retry)
            return
        note = await self._reply(bot, room, delivery, outcome.reply) if outcome.reply else ""
        await queue.finish(self.db, delivery, ok=True, status=outcome.status, error=note)
        metrics.WEBHOOK_DELIVERIES.labels("ok").inc()

    async def _failed(
        self, delivery: queue.Claimed, status: int | None, error: str, again: bool
    ) -> None:
        attempts = delivery.attempts + 1
        if again and attempts < self.settings.webhook_attempts:
            delay = min(
                self.settings.webhook_backoff * 2 ** (attempts - 1),
                self.settings.webhook_backoff_cap,
            )
            await queue.retry(self.db, delivery, delay=delay, status=status, error=error)
            metrics.WEBHOOK_DELIVERIES.labels("retry").inc()
            return
        await queue.finish(self.db, delivery, ok=False, status=status, error=error)
        metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
        logger.warning("Webhook delivery %s failed for good: %s", delivery.id, error)

    async def _reply(self, bot: User, room: Room, delivery: queue.Claimed, text: str) -> str:
        """Post the reply as the bot; what went wrong, if anything (kept on the row)."""
        # Checked again now: the bot may have been taken out of a private room since.
        if bot.id not in await access.readers(self.db, room.id, [bot.id]):
            return "reply not posted: the bot cannot read the room"
        try:
            await self.chat.post(
                room_id=room.id, author=bot, text=text, client_id=f"webhook-{delivery.id}"
            )
        except RateLimited:
            return "reply not posted: the bot is posting too fast"
        except ChatError as exc:
            return f"reply not posted: {exc}"
        return ""

    async def _load(self, delivery: queue.Claimed) -> tuple[User, Message, Room] | None:
        async with self.db.read() as session:
            bot = await session.get(User, delivery.bot_id)
            message = await session.scalar(select(Message).where(Message.id == delivery.message_id))
            room = await session.get(Room, delivery.room_id)
        if bot is None or message is None or room is None:
            return None
        return bot, message, room


def payload(message: Message, room: Room) -> dict[str, Any]:
    return {
        "message": {
            "id": message.id,
            "seq": message.seq,
            "text": message.text,
            "author": message.author.username if message.author else "",
            "author_id": message.author_id,
            "created_at": message.created_at.isoformat(),
            "mentions": message.mentions.split(),
        },
        "room": {
            "id": room.id,
            # A direct room's stored name is internal (app.rooms): it has none to show.
            "name": room.name if room.kind != "direct" else "",
            "kind": room.kind,
        },
    }


async def run(chat: Chat, settings: Settings) -> None:
    await Worker(chat, settings).run()
