"""A client's file name, made fit to show: it is never used as a path."""

from __future__ import annotations

import unicodedata

from app.models import MAX_FILE_NAME

UNNAMED = "file"


def display_name(raw: str | None) -> str:
    """The last path part of ``raw`` without control, format (bidi overrides such as
    U+202E, zero-width characters) or unassigned characters, with surrounding dots
    and spaces trimmed, at most MAX_FILE_NAME characters keeping the extension."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: controls (NUL, newlines), Cf: format (bidi overrides, ZWJ), Cs: lone
    # surrogates, Co: private use, Cn: unassigned; Zl/Zp: line and paragraph breaks.
    name = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    )
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_FILE_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILE_NAME - len(ext) - 2].rstrip() + "…." + ext
        else:
            name = name[: MAX_FILE_NAME - 1].rstrip() + "…"
    return name or UNNAMED
