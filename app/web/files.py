"""/attachments/{id}: an attachment's file and its thumbnail, for the room's readers.

Every request checks access (a removed member's next fetch is a 404, as for a file
that never was), and every answer is made so that nothing uploaded can run in the
app's origin: only the four image types, verified by decoding them for a
thumbnail, are shown inline; everything else is a download
(``Content-Disposition: attachment``), never sniffed into something else
(``nosniff``), and sandboxed should a browser render it anyway (CSP ``sandbox``).
Caches may keep a copy for this browser only, and must ask again each time
(``private, no-cache``): the answer to that is a 304 after the same access check.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select

from app import access
from app.chat import Chat
from app.files.sniff import IMAGES
from app.files.storage import KEY
from app.files.thumbs import THUMBNAIL_TYPE
from app.models import Attachment, User
from app.web.api.schemas import READ, problem
from app.web.deps import ApiUser, ChatDep

router = APIRouter(tags=["messages"])

NO_SUCH_FILE = "No such file."
SANDBOX = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": SANDBOX,
    "Cache-Control": "private, no-cache",
    "Cross-Origin-Resource-Policy": "same-origin",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
FILE_RESPONSES = {
    **READ,
    # The type found from the file's bytes: any type filetype knows.
    200: {"content": {"*/*": BINARY}, "description": "The file."},
    206: {"description": "The part a Range header asked for."},
    304: {"description": "Unchanged since the ETag sent in If-None-Match."},
    404: problem("No such file, or not in a room the caller can read."),
}
AttachmentId = Annotated[
    str,
    Path(
        min_length=22,
        max_length=22,
        pattern=KEY.pattern,
        description="The attachment's id (from a message's `attachments`).",
        examples=["EdIfuJTmCKoT8UozUM1NdQ"],
    ),
]


async def readable(chat: Chat, user: User, attachment_id: str) -> Attachment:
    async with chat.db.read() as session:
        found = await session.scalar(select(Attachment).where(Attachment.id == attachment_id))
    if found is None or not await access.can_read(chat.db, user, found.room_id):
        raise HTTPException(404, NO_SUCH_FILE)
    return found


def disposition(kind: str, name: str) -> str:
    """RFC 6266: a plain ASCII fallback, and the real name percent-encoded."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\%' else "_" for c in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def send(
    request: Request, chat: Chat, key: str | None, media_type: str, kind: str, name: str
) -> Response:
    path = chat.storage.path(key) if key else None
    if path is None:
        raise HTTPException(404, NO_SUCH_FILE)
    # A key names one file for ever (files never change): it is the ETag.
    etag = f'"{key}"'
    headers = {**HEADERS, "ETag": etag, "Content-Disposition": disposition(kind, name)}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


@router.get(
    "/attachments/{attachment_id}",
    summary="An attachment's file",
    description=(
        "For readers of its room (404 otherwise, as for no file). PNG, JPEG, GIF and "
        "WebP images that decoded are shown inline, everything else is a download; "
        "Range requests are answered (206)."
    ),
    operation_id="get_attachment",
    response_class=FileResponse,
    responses=FILE_RESPONSES,
)
async def get_attachment(
    request: Request, attachment_id: AttachmentId, user: ApiUser, chat: ChatDep
) -> Response:
    found = await readable(chat, user, attachment_id)
    inline = found.thumbnail is not None and found.content_type in IMAGES
    kind = "inline" if inline else "attachment"
    return send(request, chat, found.id, found.content_type, kind, found.name)


@router.get(
    "/attachments/{attachment_id}/thumbnail",
    summary="An image attachment's thumbnail (WebP)",
    description="For readers of its room; 404 for a file that has no thumbnail.",
    operation_id="get_attachment_thumbnail",
    response_class=FileResponse,
    responses={**FILE_RESPONSES, 200: {"content": {THUMBNAIL_TYPE: BINARY}, "description": "WebP"}},
)
async def get_thumbnail(
    request: Request, attachment_id: AttachmentId, user: ApiUser, chat: ChatDep
) -> Response:
    found = await readable(chat, user, attachment_id)
    stem = found.name.rpartition(".")[0] or found.name
    return send(request, chat, found.thumbnail, THUMBNAIL_TYPE, "inline", f"{stem}.webp")
