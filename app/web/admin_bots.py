"""The admin page's bots section: make a bot, give it a new token or webhook
secret (each shown once), and see its latest deliveries and their errors.

Like the rest of the admin page (app.web.admin), every action answers with the
section re-rendered, a refusal included, so htmx swaps it in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from app import bots
from app.auth import AuthError
from app.db import Database
from app.errors import ChatError
from app.models import MAX_WEBHOOK_URL
from app.web.deps import ChatDep, FormStr, PageAdmin, UserId
from app.web.pages import page
from app.webhooks import queue

router = APIRouter(prefix="/admin/bots", include_in_schema=False)


async def bots_context(db: Database) -> dict[str, Any]:
    every = await bots.list_bots(db)
    return {
        "bots": every,
        "deliveries": await queue.recent(db, [bot.id for bot in every]),
        "max_webhook_url": MAX_WEBHOOK_URL,
    }


async def section(
    request: Request,
    chat: ChatDep,
    *,
    notice: str = "",
    error: str = "",
    shown: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    context = await bots_context(chat.db)
    return page(
        request,
        "fragments/admin_bots.html",
        notice=notice,
        error=error,
        shown=shown or [],
        **context,
    )


@router.post("")
async def add_bot(
    request: Request,
    admin: PageAdmin,
    chat: ChatDep,
    name: FormStr,
    webhook: Annotated[str, Form()] = "",
) -> HTMLResponse:
    try:
        bot, token, secret = await bots.create_bot(chat.db, name=name, webhook=webhook or None)
    except (AuthError, ChatError) as exc:
        return await section(request, chat, error=str(exc))
    shown = [("API token", token)] + ([("Webhook secret", secret)] if secret else [])
    return await section(request, chat, notice=f"Created bot {bot.username}.", shown=shown)


@router.post("/{user_id}/token")
async def new_token(
    request: Request, admin: PageAdmin, chat: ChatDep, user_id: UserId
) -> HTMLResponse:
    try:
        token = await bots.rotate_token(chat.db, user_id)
    except AuthError as exc:
        return await section(request, chat, error=str(exc))
    notice = "The bot's old tokens stop working now."
    return await section(request, chat, notice=notice, shown=[("API token", token)])


@router.post("/{user_id}/secret")
async def new_secret(
    request: Request, admin: PageAdmin, chat: ChatDep, user_id: UserId
) -> HTMLResponse:
    try:
        secret = await bots.rotate_secret(chat.db, user_id)
    except AuthError as exc:
        return await section(request, chat, error=str(exc))
    notice = "Deliveries are signed with the new secret from now on."
    return await section(request, chat, notice=notice, shown=[("Webhook secret", secret)])
