"""The Jinja environment, and the fragments pushed over WebSockets.

Pages and pushes use the same fragment templates, so a message looks the same
whether it arrived live, by catch-up or in a page load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from app import faces, markup
from app.models import MAX_DISPLAY_NAME, Message, Room
from app.reactions import Reactions
from app.search.query import MAX_QUERY
from app.unread import CAP, Counts

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def render(name: str, **context: object) -> str:
    return env.get_template(name).render(**context)


class MessageView(NamedTuple):
    """Everything a message's fragment shows, and nothing else: its cache key."""

    id: int
    seq: int
    author: str
    text: str
    created_at: datetime
    mentions: str = ""  # the usernames it mentions, space-separated
    html: str | None = None  # the text as HTML (app.markup); None: render it from text
    bot: bool = False  # the author is a bot (app.bots)
    rev: int = 0  # the seq of its latest change (0: its creation, as seq)
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    # The author's face (app.faces), as it was when the message was rendered.
    author_id: int = 0
    display_name: str | None = None
    avatar_key: str | None = None
    # (emoji, the usernames who reacted, how many did), app.reactions.of_messages
    reactions: Reactions = ()

    @classmethod
    def of(cls, message: Message | MessageView, reactions: Reactions = ()) -> MessageView:
        if isinstance(message, MessageView):
            return message
        author = message.author  # None: a removed user's (a tombstone, shown without)
        return cls(
            message.id,
            message.seq,
            author.username if author else "",
            message.text,
            message.created_at,
            message.mentions or "",
            message.html,
            bool(author and author.is_bot),
            message.rev or message.seq,
            message.edited_at,
            message.deleted_at,
            author.id if author else 0,
            author.display_name if author else None,
            author.avatar_key if author else None,
            reactions,
        )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


def text_html(message: MessageView) -> Markup:
    """A message's text as HTML: stored by the writer (app.markup, sanitized), or
    rendered from the text for a message saved before formatting existed."""
    if message.html is not None:
        return Markup(message.html)
    return Markup(markup.to_html(message.text, message.mentions))


env.filters["text_html"] = text_html
env.filters["initials"] = faces.initials
env.filters["face_hue"] = faces.hue
env.globals["avatar_url"] = faces.avatar_url
env.globals["max_display_name"] = MAX_DISPLAY_NAME
env.globals["max_avatar_mb"] = 2


# Rendered messages, keyed by all they show: a change to a message moves its rev, so
# an entry is right for as long as it lives, whichever process saved or changed
# what. A room's window is rendered again after each change; this renders only the
# changed message.
# 1,024 is ~20 rooms' windows: ~0.3 MB typically, ~40 MB if all were 4,000 emoji.
MESSAGE_CACHE_SIZE = 1024


@lru_cache(maxsize=MESSAGE_CACHE_SIZE)
def _message(view: MessageView) -> Markup:
    return Markup(env.get_template("fragments/message.html").render(message=view))


def message(message: Message | MessageView) -> Markup:
    """One chat message's element: the only renderer of a message, live or in a page."""
    return _message(MessageView.of(message))


def message_list(messages: Iterable[Message | MessageView]) -> Markup:
    return Markup("".join([_message(MessageView.of(m)) for m in messages]))


env.globals["message_list"] = message_list
env.globals["max_query"] = MAX_QUERY


class Window(NamedTuple):
    """A run of a room's messages as ``#messages`` holds them: their elements, and
    the seq of the first (older ones load from there), None when there are none.
    ``newer_after`` is set when newer messages follow that the run does not hold
    (a permalink's window): they load from after that seq."""

    first_seq: int | None
    html: Markup
    newer_after: int | None = None

    @classmethod
    def of(
        cls, messages: Sequence[Message | MessageView], *, newer_after: int | None = None
    ) -> Window:
        """``messages`` oldest first."""
        first = messages[0].seq if messages else None
        return cls(first, message_list(messages), newer_after)


def appended_messages(messages: Sequence[Message | MessageView]) -> str:
    """Messages appended to the end of ``#messages`` (live, catch-up or repair)."""
    return render("fragments/messages_append.html", messages=messages)


def changed_message(message: Message | MessageView, reactions: Reactions = ()) -> str:
    """A message edited, deleted or reacted to: its element alone, which the ws
    extension swaps in place of the one with its id (``hx-swap-oob`` "true")."""
    return str(_message(MessageView.of(message, reactions)))


def caught_up(changed: Sequence[MessageView], after: int, cursor: int) -> str:
    """What a socket holding seq ``after`` missed, in one frame: the messages created
    since appended in seq order, those changed since swapped in place (each once, in
    its current state), and the seq the page now holds (``#room-seq``)."""
    new = sorted((m for m in changed if m.seq > after), key=lambda m: m.seq)
    swapped = "".join(_message(m) for m in changed if m.seq <= after)
    appended = appended_messages(new) if new else ""
    return swapped + appended + room_seq(cursor)


def room_seq(seq: int) -> str:
    """The highest seq a page holds, when no message's own seqs tell it (app.js)."""
    return f'<span id="room-seq" data-seq="{int(seq)}" hidden></span>'


env.globals["room_seq"] = room_seq


def replaced_messages(
    room: Room, messages: Sequence[Message | MessageView], cursor: int = 0
) -> str:
    """The whole ``#messages`` list, for a client too far behind to catch up."""
    html = render("fragments/messages_replace.html", room=room, window=Window.of(messages))
    return html + room_seq(cursor) if cursor else html


def notice(kind: str, username: str) -> str:
    """ "X joined" or "X left"; the member list goes separately (see app.hub)."""
    return render("fragments/notice.html", kind=kind, username=username)


def members(names: Sequence[str], people: dict[str, faces.Face] | None = None) -> str:
    """Who is here, with their faces (``people``, by username)."""
    return render("fragments/members.html", members=names, faces=people or {}, oob=True)


def online(counts: dict[int, int]) -> str:
    return render("fragments/online.html", counts=counts)


def error(text: str) -> str:
    return render("fragments/error.html", text=text)


def unread_counts(counts: dict[int, Counts]) -> str:
    """The unread and mention badges of these rooms, swapped in where they are."""
    return render("fragments/unread.html", counts=counts, oob=True)


def activity(room_id: int, seq: int) -> str:
    """A room's newest message seq, for every page: theirs to fetch new counts."""
    return render("fragments/activity.html", room_id=room_id, seq=seq, oob=True)


def mention_note(room: Room, message: Message) -> str:
    """What a mentioned user's page may raise as a browser notification."""
    return render("fragments/mention_note.html", room=room, message=MessageView.of(message))


def rooms_changed() -> str:
    """Tells a page its room list changed (a room it may no longer, or now, read):
    app.js fetches the list again."""
    return '<span id="rooms-changed" hidden hx-swap-oob="true"></span>'


def typing(username: str) -> str:
    return render("fragments/typing.html", username=username)


def badge(count: int) -> str:
    return f"{CAP - 1}+" if count >= CAP else str(count)


env.filters["badge"] = badge
