"""Files posted with a message: made ready to save (committed, sniffed,
thumbnailed, off the event loop), shown in the message, and listed for the API."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from app import render
from app.db import Database
from app.files import names, sniff, thumbs
from app.files.multipart import Received
from app.files.storage import Storage
from app.models import Attachment
from app.settings import Settings


class Shown(Protocol):
    """What a message shows of an attachment: a row, or one about to be saved."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def content_type(self) -> str: ...
    @property
    def thumbnail(self) -> str | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...


@dataclass(frozen=True)
class NewAttachment:
    id: str  # its storage key
    name: str
    size: int
    content_type: str
    thumbnail: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def keys(self) -> list[str]:
        return [self.id] + ([self.thumbnail] if self.thumbnail else [])


def url(attachment: Shown) -> str:
    return f"/attachments/{attachment.id}"


def thumbnail_url(attachment: Shown) -> str | None:
    return f"/attachments/{attachment.id}/thumbnail" if attachment.thumbnail else None


async def prepare(
    received: Received, *, storage: Storage, settings: Settings
) -> list[NewAttachment]:
    """Commit each received file, find its type from its bytes and make an image's
    thumbnail, in a thread; on any failure every file goes."""
    try:
        return await asyncio.to_thread(_prepare, received, storage, settings)
    except BaseException:
        received.abort()
        raise


def _prepare(received: Received, storage: Storage, settings: Settings) -> list[NewAttachment]:
    made: list[NewAttachment] = []
    kept: list[str] = []  # committed keys, removed again if a later file fails
    try:
        for client_name, upload in received.files:
            upload.commit()
            kept.append(upload.key)
            path = storage.path(upload.key)
            assert path is not None, "a committed upload has a path"
            content_type = sniff.content_type(path)
            thumb = storage.create(settings.max_upload_bytes)
            size = thumbs.make(
                path,
                content_type,
                thumb,
                max_pixels=settings.max_image_pixels,
                size=settings.thumbnail_size,
            )
            if size is None:
                thumb.abort()
            else:
                thumb.commit()
                kept.append(thumb.key)
            made.append(
                NewAttachment(
                    upload.key,
                    names.display_name(client_name),
                    upload.size,
                    content_type,
                    thumb.key if size else None,
                    size.width if size else None,
                    size.height if size else None,
                )
            )
    except BaseException:
        for key in kept:
            if (path := storage.path(key)) is not None:
                path.unlink(missing_ok=True)
        raise
    return made


def html(attachments: Sequence[Shown]) -> str:
    """The message's attachments, rendered once with it (app.writer): a thumbnail
    that opens the page's one lightbox, or a download card."""
    if not attachments:
        return ""
    return render.render("fragments/attachments.html", attachments=attachments)


def size_label(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return ""


def kind_label(attachment: Shown) -> str:
    """A few letters for the card's icon: the extension of the shown name, if short."""
    stem, dot, ext = attachment.name.rpartition(".")
    return ext[:4].upper() if dot and stem and ext.isalnum() else "FILE"


render.env.filters["file_size"] = size_label
render.env.filters["file_kind"] = kind_label
render.env.globals["attachment_url"] = url
render.env.globals["thumbnail_url"] = thumbnail_url


async def of_messages(db: Database, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    """Each message's attachments, in their order (API answers)."""
    if not message_ids:
        return {}
    async with db.read() as session:
        rows = await session.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_(message_ids))
            .order_by(Attachment.message_id, Attachment.position)
        )
        found: dict[int, list[Attachment]] = {}
        for row in rows:
            found.setdefault(row.message_id, []).append(row)
        return found
