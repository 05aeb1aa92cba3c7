"""Which strings are one emoji, and how a message's reactions render (once for all)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from app import render
from app.reactions import COMMON, PATTERN, is_one_emoji
from app.render import MessageView

ONE = [
    "👍",
    "👍🏽",  # with a skin tone
    "❤️",  # with the emoji presentation selector
    "❤",
    "👨\u200d👩\u200d👧",  # a family: one ZWJ sequence, one grapheme
    "🏳️\u200d🌈",
    "👩🏽\u200d💻",
    "🇫🇷",  # a flag: two regional indicators
    "#️⃣",  # a keycap
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # a tag sequence
    *COMMON,
]
NOT_ONE = [
    "",
    "ok",  # text
    "a👍",
    "👍👍",  # two emoji
    "👍 ",
    " 👍",
    "👍\n",
    "\x00",  # control characters
    "👍\x07",
    "\u200d",
    "👍\u200d",  # a ZWJ joining nothing
    "🇫",  # half a flag
    "1",
    "<b>",
    "👍" * 20,
]


@pytest.mark.parametrize("text", ONE)
def test_one_emoji_passes(text: str) -> None:
    assert is_one_emoji(text)
    # The schema's pattern says the same (python-re, as pydantic reads it).
    assert re.search(PATTERN, text)


@pytest.mark.parametrize("text", NOT_ONE)
def test_anything_else_is_refused(text: str) -> None:
    assert not is_one_emoji(text)


def test_reactions_render_once_with_counts_and_who_reacted() -> None:
    when = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    view = MessageView(1, 1, "alice", "hi", when, reactions=(("👍", ("bob", "carol"), 2),))
    html = str(render.message(view))
    assert 'data-emoji="👍" data-reactors=" bob carol "' in html
    assert '<span class="count">2</span>' in html and 'title="bob, carol"' in html
    hostile = view._replace(reactions=(('"><script>', ("x",), 1),))
    assert "<script>" not in str(render.message(hostile))
