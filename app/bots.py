"""Bot users: accounts with no password that act through API tokens and, with a
webhook URL, are told of the messages that mention them (app.webhooks).

Used by the CLI (``talkroom createbot``) and the admin page alike.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update

from app.auth import AuthError, check_username
from app.db import Database
from app.errors import Conflict
from app.models import ApiToken, User
from app.tokens import create_token
from app.webhooks.urls import WebhookURLError, check_url

# Stored in password_hash: no hash at all, so no password ever verifies (app.auth).
NO_PASSWORD = ""


class BotError(AuthError):
    """A bot that cannot be made or changed as asked; the message says why."""


class NameTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("That username is taken.")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def clean_webhook(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    try:
        return check_url(url)
    except WebhookURLError as exc:
        raise BotError(str(exc)) from None


async def create_bot(
    db: Database, *, name: str, webhook: str | None = None
) -> tuple[User, str, str | None]:
    """A new bot: the user, its API token (shown once) and its webhook secret."""
    check_username(name)
    url = clean_webhook(webhook)
    secret = new_secret() if url else None
    async with db.write() as session:
        taken = await session.scalar(select(User.id).where(User.username_key == name.casefold()))
        if taken is not None:
            raise NameTaken()
        bot = User(
            username=name,
            username_key=name.casefold(),
            password_hash=NO_PASSWORD,
            is_admin=False,
            is_bot=True,
            webhook_url=url,
            webhook_secret=secret,
        )
        session.add(bot)
    _, token = await create_token(db, bot)
    return bot, token, secret


async def list_bots(db: Database) -> list[User]:
    async with db.read() as session:
        rows = await session.scalars(select(User).where(User.is_bot).order_by(User.username_key))
        return list(rows)


async def _bot(db: Database, bot_id: int) -> User:
    async with db.read() as session:
        bot = await session.get(User, bot_id)
    if bot is None or not bot.is_bot:
        raise BotError("There is no such bot.")
    return bot


async def set_webhook(db: Database, bot_id: int, url: str | None) -> tuple[User, str | None]:
    """Give the bot a webhook URL (or none); a new secret when it had none."""
    bot = await _bot(db, bot_id)
    cleaned = clean_webhook(url)
    secret = bot.webhook_secret or (new_secret() if cleaned else None)
    async with db.write() as session:
        await session.execute(
            update(User)
            .where(User.id == bot.id)
            .values(webhook_url=cleaned, webhook_secret=secret if cleaned else None)
        )
    bot.webhook_url, bot.webhook_secret = cleaned, secret if cleaned else None
    return bot, bot.webhook_secret


async def rotate_secret(db: Database, bot_id: int) -> str:
    """A new webhook secret; deliveries are signed with it from now on."""
    bot = await _bot(db, bot_id)
    if not bot.webhook_url:
        raise BotError("That bot has no webhook.")
    secret = new_secret()
    async with db.write() as session:
        await session.execute(update(User).where(User.id == bot.id).values(webhook_secret=secret))
    return secret


async def rotate_token(db: Database, bot_id: int) -> str:
    """Revoke every token of the bot and make a new one (shown once)."""
    bot = await _bot(db, bot_id)
    async with db.write() as session:
        await session.execute(delete(ApiToken).where(ApiToken.user_id == bot.id))
    _, token = await create_token(db, bot)
    return token
