"""Avatars: an uploaded image made into a small square thumbnail, kept in the database.

Only our own re-encoding is ever served: whatever the upload held besides the
pixels (EXIF with its GPS position, a script appended to a PNG, a second frame)
is not in it. The type is sniffed from the bytes by Pillow's decoders for the four
image types we accept, never taken from the file name or the client's header.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from typing import NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, update

from app.db import Database
from app.models import MAX_AVATAR_KEY, User, UserAvatar

logger = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
# An upload's size, and its pixels checked from the header before anything is
# decoded: a 30,000 x 30,000 PNG is a few KB of zeros and 3.6 GB decoded.
MAX_BYTES = 2 * 2**20
MAX_PIXELS = 25_000_000
SIZE = 128  # the thumbnail's side, in pixels: twice the largest it is shown, for HiDPI
CONTENT_TYPE = "image/webp"
# Thumbnails made at once per process: each holds a decoded image (up to 100 MB
# at MAX_PIXELS) and a core.
_making = asyncio.Semaphore(2)


class AvatarError(ValueError):
    """An upload refused; its message says why, for the user."""


class TooLarge(AvatarError):
    def __init__(self) -> None:
        super().__init__(f"An avatar is at most {MAX_BYTES // 2**20} MB.")


class PixelBomb(AvatarError):
    def __init__(self) -> None:
        super().__init__(f"The image has too many pixels (at most {MAX_PIXELS // 10**6} million).")


class Avatar(NamedTuple):
    image: bytes
    content_type: str
    key: str  # a hash of the image: the version in its URL (app.faces.avatar_url)


def make(data: bytes) -> Avatar:
    """The avatar for an upload: blocking (Pillow), so run it off the event loop."""
    if not data:
        raise AvatarError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise TooLarge()
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:  # before any pixel is decoded
                raise PixelBomb()
            if opened.format == "JPEG":  # decode at a fraction of the size: much faster
                opened.draft("RGB", (SIZE * 2, SIZE * 2))
            # The first frame of an animation; the EXIF orientation applied (and the
            # EXIF itself not carried into the thumbnail).
            frame = ImageOps.exif_transpose(opened)
            has_alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
            frame = frame.convert("RGBA" if has_alpha else "RGB")
            square = ImageOps.fit(frame, (SIZE, SIZE), Image.Resampling.LANCZOS)
    except Image.DecompressionBombError as exc:
        raise PixelBomb() from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, AvatarError):
            raise
        # Not one of the four types, or truncated or corrupt: nothing to say but that.
        raise AvatarError("That is not a PNG, JPEG, GIF or WebP image.") from exc
    out = io.BytesIO()
    square.save(out, "WEBP", quality=85, method=4)
    image = out.getvalue()
    return Avatar(image, CONTENT_TYPE, key_of(image))


def key_of(image: bytes) -> str:
    return hashlib.sha256(image).hexdigest()[:MAX_AVATAR_KEY]


async def make_off_loop(data: bytes) -> Avatar:
    """make() in a worker thread, a few at a time."""
    async with _making:
        return await asyncio.to_thread(make, data)


async def store(db: Database, user_id: int, avatar: Avatar) -> None:
    """Make ``avatar`` the user's (replacing any), and its key the user's avatar_key."""
    async with db.write() as session:
        await session.execute(delete(UserAvatar).where(UserAvatar.user_id == user_id))
        session.add(
            UserAvatar(user_id=user_id, image=avatar.image, content_type=avatar.content_type)
        )
        await session.execute(update(User).where(User.id == user_id).values(avatar_key=avatar.key))
    logger.info("User %s has a new avatar (%s bytes).", user_id, len(avatar.image))


async def remove(db: Database, user_id: int) -> None:
    """Back to initials."""
    async with db.write() as session:
        await session.execute(delete(UserAvatar).where(UserAvatar.user_id == user_id))
        await session.execute(update(User).where(User.id == user_id).values(avatar_key=None))


async def load(db: Database, user_id: int) -> UserAvatar | None:
    async with db.read() as session:
        return await session.get(UserAvatar, user_id)
