"""Reactions: which strings are one emoji, and the reactions of messages as shown.

One emoji is one grapheme made of emoji, after Unicode's grammar for a possible
emoji (UTS #51, ED-27): a pair of regional indicators (a flag), a keycap, or an
emoji with an optional presentation selector, skin tone and tag sequence; and up to
eight of those joined by ZWJs (a family, a rainbow flag). The emoji characters
come from the ``emoji`` package's data (the Unicode emoji list, kept up to date
there). The rule is one regular expression, which the API's schema publishes as the
path parameter's pattern, so the schema and the server agree on every string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, cast

import emoji
from sqlalchemy import Connection, Row, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import MAX_EMOJI, MessageReaction, User

REACTIONS = cast(Table, MessageReaction.__table__)
# The most people one message's reaction lists name in its fragment; the count
# stays exact (a room of thousands must not make each fragment that long).
MAX_NAMED = 50
# Offered by the page's picker; any other emoji can be sent through the API.
COMMON = ("👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀")

KEYCAP_BASES = "#*0123456789"


def _ranges(points: Iterable[int]) -> str:
    """A regex character class body for these code points, as ranges."""
    ordered = sorted(set(points))
    out: list[str] = []
    start = prev = ordered[0]
    for point in [*ordered[1:], -1]:
        if point == prev + 1:
            prev = point
            continue
        out.append(_char(start) if start == prev else f"{_char(start)}-{_char(prev)}")
        start = prev = point
    return "".join(out)


def _char(point: int) -> str:
    # Literal characters, not escapes: \U is Python's, and the pattern is published
    # in the API's schema for other engines (no emoji is a class metacharacter).
    return chr(point)


def _bases() -> set[int]:
    points = {ord(key[0]) for key in emoji.EMOJI_DATA}
    skip = {ord(c) for c in KEYCAP_BASES} | set(range(0x1F1E6, 0x1F200)) | {0x200D, 0xFE0F}
    return points - skip


def _class(*ranges: tuple[int, int]) -> str:
    return "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


ZWJ, VS16, KEYCAP, CANCEL_TAG = "\u200d", "\ufe0f", "\u20e3", "\U000e007f"
_INDICATOR = _class((0x1F1E6, 0x1F1FF))
_SKIN = _class((0x1F3FB, 0x1F3FF))
_TAGS = _class((0xE0020, 0xE007E))
_ELEMENT = (
    f"(?:{_INDICATOR}{{2}}"
    f"|[#*0-9]{VS16}?{KEYCAP}"
    f"|[{_ranges(_bases())}]{VS16}?{_SKIN}?(?:{_TAGS}+{CANCEL_TAG})?)"
)
# Up to 8 elements joined by ZWJs. Published as the schema's pattern (python-re
# semantics there: \Z, as $ would also match before a final newline); the server
# checks with fullmatch.
PATTERN = f"^{_ELEMENT}(?:{ZWJ}{_ELEMENT}){{0,7}}\\Z"
ONE_EMOJI = re.compile(PATTERN)


def is_one_emoji(text: str) -> bool:
    return len(text) <= MAX_EMOJI and ONE_EMOJI.fullmatch(text) is not None


# A message's reactions: each emoji, in the order it was first used, with who
# reacted, in the order they did.
Reactions = tuple[tuple[str, tuple[str, ...], int], ...]

_OF_MESSAGES = (
    select(REACTIONS.c.message_id, REACTIONS.c.emoji, User.username)
    .join_from(REACTIONS, User, REACTIONS.c.user_id == User.id)
    .where(REACTIONS.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(REACTIONS.c.message_id, REACTIONS.c.created_at, User.username)
)


async def of_messages(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Reactions]:
    """The reactions of these messages (those with none are left out): one query."""
    if not ids:
        return {}
    return _grouped(await conn.execute(_OF_MESSAGES, {"ids": list(ids)}))


def of_messages_now(conn: Connection, ids: Sequence[int]) -> dict[int, Reactions]:
    """of_messages inside a synchronous transaction (Database.run_write)."""
    if not ids:
        return {}
    return _grouped(conn.execute(_OF_MESSAGES, {"ids": list(ids)}))


def _grouped(rows: Iterable[Row[Any]]) -> dict[int, Reactions]:
    found: dict[int, dict[str, list[str]]] = {}
    for row in rows:
        found.setdefault(row.message_id, {}).setdefault(row.emoji, []).append(row.username)
    return {
        message_id: tuple(
            (emoji_, tuple(names[:MAX_NAMED]), len(names)) for emoji_, names in by_emoji.items()
        )
        for message_id, by_emoji in found.items()
    }
