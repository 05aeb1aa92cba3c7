"""A message's text in its fragment: the HTML stored at save time, or rendered from
the text for a message saved before formatting (its html is NULL)."""

from __future__ import annotations

from datetime import UTC, datetime

from app import render
from app.markup import to_html
from app.render import MessageView

WHEN = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_the_stored_html_is_what_the_fragment_shows() -> None:
    stored = to_html("**hi** @bob", "bob")
    view = MessageView(1, 1, "alice", "**hi** @bob", WHEN, "bob", stored)
    assert render.text_html(view) == stored
    assert f'<div class="text">{stored}</div>' in render.message(view)


def test_a_message_without_stored_html_is_rendered_from_its_text() -> None:
    old = MessageView(1, 1, "alice", "*old* <b>x</b> @bob https://e.org", WHEN, "bob", None)
    assert render.text_html(old) == to_html(old.text, "bob")
    assert "<em>old</em> &lt;b&gt;x&lt;/b&gt;" in render.message(old)


def test_the_fragment_escapes_nothing_twice_and_adds_nothing() -> None:
    view = MessageView(2, 2, "alice", "a & b", WHEN)
    assert '<div class="text"><p>a &amp; b</p></div>' in render.message(view)
