"""/api/bots: make a bot user (admins); its token and webhook secret are in the
answer, the only time they are shown."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app import bots
from app.auth import USERNAME_RE
from app.models import MAX_WEBHOOK_URL
from app.web.api.schemas import ADMIN_WRITE, STRICT, problem
from app.web.deps import ApiAdmin, DbDep

router = APIRouter(tags=["users"])

# http(s), a host name or IPv4 address, a port from 1 to 65535 and no credentials:
# within what app.webhooks.urls accepts, so a request the schema allows is never
# refused for its URL.
PORT = r"(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})"
WEBHOOK_RE = rf"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:{PORT})?([/?#][!-~]*)?$"


class BotIn(BaseModel):
    model_config = STRICT

    username: Annotated[str, Field(pattern=USERNAME_RE.pattern, examples=["deploybot"])]
    webhook_url: Annotated[
        str | None,
        Field(
            pattern=WEBHOOK_RE,
            max_length=MAX_WEBHOOK_URL,
            description="Where messages that mention the bot are POSTed (optional).",
            examples=["https://bots.example.com/talkroom"],
        ),
    ] = None


class BotOut(BaseModel):
    id: int
    username: str
    webhook_url: str | None
    token: str = Field(description="The bot's API token, shown only this once.")
    webhook_secret: str | None = Field(
        description="Signs the webhook's POSTs (X-Talkroom-Signature); shown only this once."
    )


@router.post(
    "/bots",
    summary="Make a bot user (admins)",
    description="A user with no password that acts through its API token; with a webhook "
    "URL it is sent the messages that mention it (see the README).",
    operation_id="create_bot",
    status_code=201,
    responses={**ADMIN_WRITE, 409: problem("That username is taken.")},
)
async def create_bot(body: BotIn, admin: ApiAdmin, db: DbDep) -> BotOut:
    bot, token, secret = await bots.create_bot(db, name=body.username, webhook=body.webhook_url)
    return BotOut(
        id=bot.id,
        username=bot.username,
        webhook_url=bot.webhook_url,
        token=token,
        webhook_secret=secret,
    )
