"""One database session for a page request's reads (app.db.Database.shared_reads).

A page reads its session, room, room list, unread counts and window: five queries,
each of which paid a connection checkout, a BEGIN and a rollback (on aiosqlite
every one of those is a round trip to its thread). GET and HEAD requests read
through one session instead, given back before the response starts (not held
while the body goes out), or at the request's first write.

Of the other methods only the API's post of a message, the hot one, shares its two
reads (session, room); it gives the session back before the message writer (another
task, which needs a connection of its own) saves it (app.web.api.messages). Others
keep a session per read: a login, say, would hold a connection while it hashes.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import Database

READ_METHODS = frozenset({"GET", "HEAD"})
POST_MESSAGE = re.compile(r"/api/rooms/[0-9]+/messages\Z")


def shares_reads(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    method = scope["method"]
    return method in READ_METHODS or (method == "POST" and bool(POST_MESSAGE.match(scope["path"])))


class SharedReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        db: Database | None = getattr(scope["app"].state, "db", None) if "app" in scope else None
        if db is None or not shares_reads(scope):
            await self.app(scope, receive, send)
            return
        async with db.shared_reads() as reads:

            async def send_after_reads(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await reads.end()
                await send(message)

            await self.app(scope, receive, send_after_reads)
