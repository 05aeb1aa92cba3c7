"""What a file is, from its bytes: never from the client's name or content type."""

from __future__ import annotations

from pathlib import Path

import filetype

OCTET_STREAM = "application/octet-stream"
# The only types shown inline (thumbnails, the lightbox, the file itself): Pillow
# decodes them, and a browser renders them as pictures, never as a document.
IMAGES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def content_type(path: Path) -> str:
    """The type filetype finds from the file's magic numbers (its first 8 KB), or
    application/octet-stream for what it does not know: text, HTML and SVG among
    them, which are then only ever downloaded."""
    if path.stat().st_size == 0:
        return OCTET_STREAM
    kind = filetype.guess(str(path))
    return kind.mime if kind is not None else OCTET_STREAM
