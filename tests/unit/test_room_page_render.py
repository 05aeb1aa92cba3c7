"""One renderer for a message: a live push and a page hold the same element."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup

from app import render
from app.models import Message, Room, User
from app.render import MessageView, Window
from app.windows import CachedWindow, WindowCache

WHEN = datetime(2026, 11, 27, 15, 53, 8, 123456, tzinfo=UTC)


def saved(text: str, *, id: int = 7, seq: int = 3) -> Message:
    message = Message(id=id, room_id=1, seq=seq, text=text, created_at=WHEN, author_id=1)
    message.author = User(id=1, username="alice")
    return message


def test_a_saved_message_and_a_page_row_render_the_same_element() -> None:
    text = "<b>hi</b> & https://example.com/a?b=1&c=2 {{ x }}"
    live = render.appended_messages([saved(text)])
    element = render.message(MessageView(7, 3, "alice", text, WHEN))
    assert live == f'<div id="messages" hx-swap-oob="beforeend">{element}</div>'
    assert element == (
        '<article class="msg" id="message-7" data-seq="3" data-rev="3" data-author="alice" '
        "hx-disable>\n"
        '<header><span class="avatar initials hue-11" aria-hidden="true">A</span>'
        '<span class="author">alice</span> '
        '<time datetime="2026-11-27T15:53:08+00:00">15:53</time></header>\n'
        '<div class="text"><p>&lt;b&gt;hi&lt;/b&gt; &amp; '
        '<a href="https://example.com/a?b=1&amp;c=2" '
        'target="_blank" rel="nofollow noopener noreferrer">https://example.com/a?b=1&amp;c=2</a> '
        "{{ x }}</p></div>\n</article>"
    )


def test_a_message_is_rendered_from_what_it_shows_not_from_its_id() -> None:
    first = render.message(MessageView(7, 3, "alice", "first", WHEN))
    again = render.message(MessageView(7, 3, "bob", "second", WHEN))
    assert "first" in first and "alice" in first
    assert "second" in again and "bob" in again and "alice" not in again


def test_the_history_list_is_the_elements_in_order() -> None:
    room = Room(id=1, name="r<1>", description="")
    rows = [MessageView(i, i, "alice", f"m{i}", WHEN) for i in (2, 3)]
    html = render.render("fragments/history.html", room=room, window=Window.of(rows))
    older = '<div class="older" hx-get="/rooms/1/messages?before=2"'
    assert html.startswith(older)
    assert html.endswith("".join(render.message(r) for r in rows))
    empty = render.render("fragments/history.html", room=room, window=Window.of([]))
    assert empty == (
        '<p class="empty empty-room">No messages in <strong hx-disable>r&lt;1&gt;</strong> yet.'
        " Say hello!</p>"
    )


def cached(html: str) -> CachedWindow:
    return CachedWindow((WHEN, 1), [1], Window(1, Markup(html)))


def test_the_window_cache_drops_the_least_recently_rendered_over_its_budget() -> None:
    cache = WindowCache(budget=10)
    cache.put(1, cached("aaaa"))
    cache.put(2, cached("bbbb"))
    cache.put(1, cached("cccc"))  # rendered again: now the newest
    assert cache.size == 8
    cache.put(3, cached("dddd"))
    assert 2 not in cache and 1 in cache and 3 in cache
    assert cache.size == 8
    cache.put(4, cached("x" * 50))  # one too big for the budget still stays, alone
    assert [room for room in (1, 2, 3, 4) if room in cache] == [4]
    assert cache.size == 50
