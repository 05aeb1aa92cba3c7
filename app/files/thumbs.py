"""Thumbnails of PNG, JPEG, GIF and WebP images, with Pillow.

Blocking (decoding is CPU work): callers run it in a thread. An image's size is
read from its header and checked against the pixel limit before anything is
decoded, so a decompression bomb (a 30,000 x 30,000 PNG of a few KB) is refused
without being inflated; Pillow's own bomb check is a second wall. A thumbnail is a
new image (orientation from EXIF applied, then no metadata at all), of the first
frame of an animation.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError

from app.files.sniff import IMAGES
from app.files.storage import Upload

logger = logging.getLogger(__name__)

THUMBNAIL_TYPE = "image/webp"


class Thumbnail(NamedTuple):
    width: int
    height: int


def make(
    source: Path, content_type: str, target: Upload, *, max_pixels: int, size: int
) -> Thumbnail | None:
    """Write ``source``'s thumbnail to ``target`` (not committed) and its size, or
    None: not one of the four image types, too many pixels, or not decodable
    (then it is shown as a plain file)."""
    expected = IMAGES.get(content_type)
    if expected is None:
        return None
    try:
        with warnings.catch_warnings():
            # Past MAX_IMAGE_PIXELS Pillow warns, past twice that it refuses: both
            # mean "do not decode".
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=[expected]) as image:
                width, height = image.size
                if width < 1 or height < 1 or width * height > max_pixels:
                    return None
                image.seek(0)  # an animation's first frame
                frame = ImageOps.exif_transpose(image)
                frame = frame.convert("RGBA" if _has_alpha(frame) else "RGB")
                frame.thumbnail((size, size))
                out = io.BytesIO()
                frame.save(out, "WEBP", quality=80)  # no exif=: nothing of the original's
                target.write(out.getvalue())
                return Thumbnail(frame.width, frame.height)
    except (
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,  # what some Pillow decoders raise for a corrupt header
    ) as exc:
        logger.info("No thumbnail for a %s: %s.", content_type, type(exc).__name__)
        return None


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
