"""How people look: display names, and the avatar or initials shown beside a name.

A face is rendered into the fragments that show a person (a message, the member
list, the sidebar's direct messages) when they are rendered: a message's fragment
is cached by everything it shows (app.render.MessageView), so a changed name or
avatar renders anew wherever a message is rendered after the change.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import select, update

from app.db import Database
from app.models import MAX_DISPLAY_NAME, User

# Initials' background colours: classes hue-0 … hue-11 in app.css (no inline styles:
# the page's CSP forbids them).
HUES = 12
# Kept although they are format characters: ZWJ joins emoji sequences, ZWNJ shapes
# Persian and Indic scripts. Every other format character goes: bidi overrides and
# isolates (which reorder the text around a name), zero-width spaces, BOMs.
KEEP_FORMAT = {"\u200c", "\u200d"}
# Control (Cc), format (Cf), surrogates (Cs), private use (Co), unassigned (Cn).
# Whitespace (tabs, newlines, line separators) becomes one space first.
DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
WORD_BREAK = re.compile(r"[\s_.\-]+")


class DisplayNameError(ValueError):
    """A display name refused (too long); its message says why, for the user."""


def clean_display_name(raw: str) -> str | None:
    """The display name to store for ``raw``: NFC, controls and bidi overrides
    removed, runs of spaces made one, trimmed; None when nothing is left (the
    username alone shows). Longer than MAX_DISPLAY_NAME characters: refused."""
    spaced = " ".join(raw.split())
    kept = "".join(
        c for c in spaced if c in KEEP_FORMAT or unicodedata.category(c) not in DROP_CATEGORIES
    )
    name = " ".join(unicodedata.normalize("NFC", kept).split())
    if len(name) > MAX_DISPLAY_NAME:
        raise DisplayNameError(f"A display name is at most {MAX_DISPLAY_NAME} characters.")
    return name or None


def initials(name: str) -> str:
    """Up to two letters for an avatar without an image: the first of the first
    two words ("Ada Lovelace" → "AL", "bob_smith" → "BS", "carol" → "C")."""
    words = [w for w in WORD_BREAK.split(name) if w]
    letters = [w[0] for w in words[:2]] or ["?"]
    return "".join(letters).upper()


def hue(username: str) -> int:
    """A colour for a username's initials: stable, and spread over HUES."""
    return zlib.crc32(username.casefold().encode()) % HUES


def avatar_url(user_id: int, avatar_key: str) -> str:
    """Where an avatar is served; its key (a hash of its bytes) in the URL, so a new
    avatar is a new URL and a cached old one is never shown for it."""
    return f"/avatars/{int(user_id)}?v={avatar_key}"


class Face(NamedTuple):
    """What a fragment shows of a person beside their username."""

    user_id: int
    username: str
    display_name: str | None = None
    avatar_key: str | None = None

    @classmethod
    def of(cls, user: User) -> Face:
        return cls(user.id, user.username, user.display_name, user.avatar_key)


async def by_names(db: Database, names: Iterable[str]) -> dict[str, Face]:
    """The faces of these usernames (one query), keyed by username; unknown ones
    are left out (a fragment shows them by name alone)."""
    keys = {name.casefold() for name in names}
    if not keys:
        return {}
    query = select(User.id, User.username, User.display_name, User.avatar_key).where(
        User.username_key.in_(keys)
    )
    async with db.read() as session:
        return {row.username: Face._make(row) for row in await session.execute(query)}


async def set_display_name(db: Database, user_id: int, raw: str) -> str | None:
    """Store the user's cleaned display name (None clears it) and return it."""
    name = clean_display_name(raw)
    async with db.write() as session:
        await session.execute(update(User).where(User.id == user_id).values(display_name=name))
    return name
