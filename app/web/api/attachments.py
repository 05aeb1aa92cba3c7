"""/api/rooms/{room_id}/attachments: post files (and an optional caption) as a
message, delivered like any other."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect

from app.errors import ChatError, UploadTooLarge
from app.files import attachments, multipart
from app.settings import Settings
from app.web.api.schemas import NO_NUL, NOT_FOUND, TOO_FAST, WRITE, MessageOut, problem
from app.web.deps import ApiUser, ChatDep, RoomDep
from app.web.limits import MAX_CLIENT_ID, MAX_TEXT

router = APIRouter(tags=["messages"])

# What a form adds around its files: boundaries, part headers, the caption and the
# client id. A declared length beyond the limit and this is refused unread.
FORM_OVERHEAD = 2 * multipart.MAX_FIELD + 64 * 1024

MAX_FILES = Settings.model_fields["max_upload_files"].default
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": MAX_FILES,
                            "description": "One or more files (TALKROOM_MAX_UPLOAD_FILES, 10).",
                        },
                        "text": {
                            "type": "string",
                            "maxLength": MAX_TEXT,
                            "pattern": NO_NUL,
                            "description": "An optional caption (Markdown, like a message).",
                        },
                        "client_id": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_CLIENT_ID,
                            "pattern": NO_NUL,
                            "description": "Makes a retry safe, as for a message.",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/rooms/{room_id}/attachments",
    summary="Post files as a message, delivered like one sent from a browser",
    description=(
        "A multipart form: one or more `file` parts, an optional `text` caption and "
        "`client_id`. The files together may have `TALKROOM_MAX_UPLOAD_MB` (25) MB, "
        "counted as they arrive (413 at the limit, nothing kept). Each file's type is "
        "found from its bytes; PNG, JPEG, GIF and WebP images get a thumbnail. The "
        "message is saved with the room's next `seq`; rate limited like posts."
    ),
    operation_id="post_attachments",
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses={
        **WRITE,
        **NOT_FOUND,
        **TOO_FAST,
        413: problem("The files are larger than the upload limit: nothing was kept."),
    },
)
async def post_attachments(
    request: Request, user: ApiUser, room: RoomDep, chat: ChatDep
) -> MessageOut:
    settings = chat.settings
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise UploadTooLarge(limit)
    # Counted before the body is read: fifty uploads at once are refused, not stored.
    await chat.limit(user)
    try:
        received = await multipart.receive(
            request.headers.get("content-type", ""),
            request.stream(),
            storage=chat.storage,
            limit=limit,
            max_files=settings.max_upload_files,
        )
    except ClientDisconnect:
        # Gone mid-body (a cancelled upload): what arrived was dropped; the answer
        # reaches no one, but is a line in the log rather than a traceback.
        raise ChatError("The upload was cut short: the client went away.") from None
    text, client_id = received.fields.get("text", ""), received.fields.get("client_id")
    try:
        chat.check_client_id(client_id)
        ready = await attachments.prepare(received, storage=chat.storage, settings=settings)
    except BaseException:
        received.abort()
        raise
    keys = [key for attachment in ready for key in attachment.keys]
    try:
        message = await chat.post(
            room_id=room.id,
            author=user,
            text=text,
            client_id=client_id,
            attachments=ready,
            counted=True,
        )
    except BaseException:
        await chat.storage.delete(*keys)
        raise
    shown = (await attachments.of_messages(chat.db, [message.id])).get(message.id, [])
    if not any(a.id == ready[0].id for a in shown):
        await chat.storage.delete(*keys)  # a retry: the first upload's message stands
    return MessageOut.of(message, attachments=shown)
