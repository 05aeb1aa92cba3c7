"""A request body limit for the few routes that take a file, checked before anything
reads the body: the CSRF check parses a form body, and Starlette spools a form's
files to temporary files, so a limit in the route would come after both."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.render import render

# A multipart body's boundaries and headers around the file, and the CSRF field.
FORM_OVERHEAD = 16 * 1024
# How much of a body over the limit is read (and dropped) so the client hears the
# 413; a larger one is cut off.
DRAIN = 32 * 2**20


class BodyLimit:
    """413 for a POST to one of ``limits``' paths whose body is larger than its
    limit: at once from its Content-Length, or once a chunked body passes it (the
    body is read into memory first; the limits are small). Nothing is stored."""

    def __init__(self, app: ASGIApp, limits: dict[str, tuple[int, str]]) -> None:
        self.app = app
        self.limits = limits  # path: (bytes, what the user is told)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = None
        if scope["type"] == "http" and scope["method"] == "POST":
            limit = self.limits.get(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        most, detail = limit
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > most:
            await refuse(detail, scope, receive, send, drain=int(length) <= DRAIN)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > most:
                more = message.get("more_body", False)
                await refuse(detail, scope, receive, send, drain=more)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def refuse(detail: str, scope: Scope, receive: Receive, send: Send, *, drain: bool) -> None:
    """Answer 413. The rest of the body is read and dropped first (up to DRAIN bytes
    in all): a client still sending when the answer comes and the connection closes
    sees a reset, not the answer. Nothing of it is kept."""
    if drain:
        read = 0
        while read <= DRAIN:
            message = await receive()
            if message["type"] != "http.request":
                return
            read += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
    title = "Content Too Large"
    html = render("error.html", title=title, detail=detail, csrf_token="", user=None)
    response = HTMLResponse(html, status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)
