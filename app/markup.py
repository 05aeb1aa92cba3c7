"""A message's text as HTML: a small Markdown subset, rendered once when it is saved.

markdown-it-py parses CommonMark with raw HTML off, and only these constructs on:
**bold**, *italic*, `code`, fenced code blocks, > quotes, lists, links and
autolinked URLs (linkify-it, scheme-ful ones only: "app.py" is a file name here,
not a Paraguayan web site). Everything else stays the text it was typed as:

- Headings (``# x`` and a line underlined with ``---``), rules and indented code
  blocks: in a chat they are far more often a line that happens to start that way
  ("# of users", a pasted indented line, a "---" separator) than a wish for a
  big title, so they are paragraphs.
- Tables are not in CommonMark; reference definitions would make a line vanish.
- HTML entities: "&amp;" shows as typed, like every other character.
- Images: ``![alt](url)`` is the "!" and a link to the url (if it is http(s)),
  so nothing is fetched by a reader's browser and ``data:`` never loads.

Links may point at http, https and mailto URLs only; anything else (javascript:,
data:, relative paths, entity tricks) fails markdown-it's link rule and stays text.

``@name`` of a user the message mentions becomes the same element as before
(``<span class="mention" data-mention="…">``) wherever it sits in the formatting,
except inside code and link text; ``mentionable()`` reads the names from the same
text tokens, so an ``@name`` in code notifies nobody either.

The writer renders outside its write transaction (``prepare()``, in the sender's
task): the mentions are only known inside it, so the HTML is rendered with the
names the text may mention, and the writer renders again, inside, only when the
mentions it found differ (a name that is nobody, or a capitalised username).

nh3 (the ammonia sanitizer) then cleans the result against an allowlist of the
tags and attributes above, as a second wall: if markdown-it ever let something
through, no ``on*``, ``style``, ``hx-*`` or other attribute and no other tag
reaches the page. It also sets every link's ``rel`` and ``target``.

Most messages are one line of plain words, which neither of them changes: those
(``_plain()``, one regex) skip both and are their own paragraph: ~3 µs instead of
~55 µs for a 64-character one. A text the regex refuses late pays its scan on top
of the parse (~10% for 4,000 characters with a "*" at the end).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import escape

from app.mentions import MENTION_RE, candidates, resolve

SCHEMES = frozenset({"http", "https", "mailto"})
SURROGATE_RE = re.compile("[\ud800-\udfff]")
SCHEME_RE = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
REL = "nofollow noopener noreferrer"
TAGS = frozenset(
    {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span"}
)
ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "span": {"data-mention"}}
CLASSES = {"span": {"mention"}}
# Blocks and inline elements nested deeper than this stay text: markdown-it stops
# there, so 10,000 ">" or "*" cost linear time and no deep recursion.
MAX_NESTING = 20

# Text the parser and the sanitizer give back as typed, inside <p>…</p>: one line of
# characters no enabled rule starts at (a "~~~" fence too), nor linkify (":", "//")
# nor a mention, nor escaping ("&<>"; a '"' comes back from nh3 as typed). No
# controls, tabs, other whitespace (str.strip() and "&nbsp;") nor surrogates. No list
# marker nor space at the start, nor a space at the end (the paragraph is stripped).
# Conservative on purpose: also no "|", "]", ":" or "#" at the start, and a "." only
# before a space or the end, though none of them changes the HTML today.
_SAFE = r"[^*_~`\[\]\\|@:<>&./\s\x00-\x1f\x7f-\x9f\ud800-\udfff]"
PLAIN_RE = re.compile(rf"(?![ #+-]|\d+[.)]|\Z)(?:{_SAFE}|\.(?![^ ])|/(?!/)| +(?! |\Z))*+")


def allowed_link(url: str) -> bool:
    """Whether a (normalised) link target may be an href: http(s) and mailto only."""
    match = SCHEME_RE.match(url.strip())
    return match is not None and match.group(1).lower() in SCHEMES


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "zero", {"maxNesting": MAX_NESTING, "html": False, "linkify": True, "breaks": True}
    )
    md.enable(["fence", "blockquote", "list"])
    # Not "entity": "&amp;" typed in a chat shows as typed, as every other character does.
    md.enable(["newline", "escape", "backticks", "emphasis", "link", "autolink"])
    md.enable(["linkify"])  # the core rule (mailto:) and the inline one (://)
    md.inline.ruler.at("linkify", _linkify_inline)
    assert md.linkify is not None  # linkify-it-py is installed (the [linkify] extra)
    md.linkify.set({"fuzzy_link": False, "fuzzy_email": False, "fuzzy_ip": False})
    md.validateLink = allowed_link  # type: ignore[method-assign]
    md.core.ruler.push("mentions", _mark_mentions)
    md.add_render_rule("mention", _render_mention)
    return md


# The scheme before a "://": what markdown-it's inline linkify rule looks for, but
# only in the last characters of the pending text. The rule searches all of it at
# every "://", so 500 "http:// " in a message took ~65 ms; linkify-it knows no
# scheme longer than this anyway.
SCHEME_TAIL = 32
TAIL_SCHEME_RE = re.compile(r"(?:^|[^a-z0-9.+-])([a-z][a-z0-9.+-]*)$", re.IGNORECASE)


def _linkify_inline(state: StateInline, silent: bool) -> bool:
    """markdown-it-py 4.3's rules_inline.linkify, with the scheme searched for in a
    bounded tail of the pending text (linear time instead of quadratic)."""
    pos = state.pos
    if state.linkLevel > 0 or not state.src.startswith("://", pos) or state.md.linkify is None:
        return False
    match = TAIL_SCHEME_RE.search(state.pending[-SCHEME_TAIL:])
    if not match:
        return False
    proto = match.group(1)
    link = state.md.linkify.match_at_start(state.src[pos - len(proto) :])
    if not link:
        return False
    url: str = link.url.rstrip("*")  # a "*" at the end is emphasis, not the URL
    full_url = state.md.normalizeLink(url)
    if not state.md.validateLink(full_url):
        return False
    if not silent:
        state.pending = state.pending[: -len(proto)]
        token = state.push("link_open", "a", 1)
        token.attrs = {"href": full_url}
        token.markup, token.info = "linkify", "auto"
        token = state.push("text", "", 0)
        token.content = state.md.normalizeLinkText(url)
        token = state.push("link_close", "a", -1)
        token.markup, token.info = "linkify", "auto"
    state.pos += len(url) - len(proto)
    return True


def _mark_mentions(state: StateCore) -> None:
    """The core rule: mentions of ``env["mentioned"]`` (username key -> username)."""
    _mark(state.tokens, state.env.get("mentioned") or {})


def _mark(tokens: list[Token], mentioned: dict[str, str]) -> None:
    """Split the text tokens outside code and links around each mention of a
    mentioned user into a mention token."""
    if not mentioned:
        return
    for block in tokens:
        if block.type != "inline" or not block.children or "@" not in block.content:
            continue
        children: list[Token] = []
        for token, shown in _texts(block.children):
            if shown and "@" in token.content:
                children += _split_mentions(token.content, mentioned)
            else:
                children.append(token)
        block.children = children


def _texts(children: list[Token]) -> Iterator[tuple[Token, bool]]:
    """Each inline token, and whether it is text shown as text: code spans are
    tokens of their own, and a link's text is the link's."""
    in_link = 0
    for token in children:
        if token.type == "link_open":
            in_link += 1
        elif token.type == "link_close":
            in_link -= 1
        yield token, token.type == "text" and not in_link


def _split_mentions(text: str, mentioned: dict[str, str]) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    for match in MENTION_RE.finditer(text):
        found = resolve(match.group(1), mentioned)
        if found is None:
            continue
        username, name = found
        if match.start() > pos:
            tokens.append(_text(text[pos : match.start()]))
        mention = Token("mention", "span", 0)
        mention.meta = {"username": username, "name": name}
        tokens.append(mention)
        pos = match.start() + 1 + len(name)
    if pos < len(text):
        tokens.append(_text(text[pos:]))
    return tokens


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _render_mention(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    meta = tokens[idx].meta
    return (
        f'<span class="mention" data-mention="{escape(meta["username"])}">'
        f"@{escape(meta['name'])}</span>"
    )


MD = _parser()


def to_html(text: str, mentions: str = "") -> str:
    """``text`` as the HTML its message shows, with ``mentions`` (the usernames it
    mentions, space-separated, as app.mentions found them) as mention elements."""
    if _plain(text):
        return _paragraph(text)
    html = MD.render(_encodable(text), {"mentioned": _mentioned(mentions)})
    return sanitize(html)


def mentionable(text: str) -> list[str]:
    """The username keys ``text`` may mention (app.mentions.candidates), read from
    the text it shows as text only: an ``@name`` in code or a link's text is none."""
    if _plain(text):
        return []
    return candidates(_shown(MD.parse(_encodable(text), {})))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text rendered before its write transaction: ``html`` is
    ``to_html(text, guess)``, where ``guess`` is every name it may mention, as
    typed (the composer completes a name as the username is spelled)."""

    keys: list[str]  # what mentionable() gives
    guess: str
    html: str

    def html_for(self, text: str, mentions: str) -> str:
        """The HTML for the mentions the writer found: this one if it guessed them."""
        return self.html if mentions == self.guess else to_html(text, mentions)


def prepare(text: str) -> Prepared:
    """mentionable() and to_html() of one parse."""
    if _plain(text):
        return Prepared([], "", _paragraph(text))
    tokens = MD.parse(_encodable(text), {})
    shown = _shown(tokens)
    keys = candidates(shown)
    typed: dict[str, str] = {}
    for match in MENTION_RE.finditer(shown):
        for name in (match.group(1), match.group(1).rstrip(".-")):
            typed.setdefault(name.casefold(), name)
    guess = " ".join(typed.get(key, key) for key in keys)
    _mark(tokens, _mentioned(guess))
    html = sanitize(MD.renderer.render(tokens, MD.options, {}))
    return Prepared(keys, guess, html)


def _plain(text: str) -> bool:
    """Whether ``text`` is plain words (PLAIN_RE): its HTML is then ``_paragraph()``."""
    return PLAIN_RE.fullmatch(text) is not None


def _paragraph(text: str) -> str:
    return f"<p>{text}</p>"


def _shown(tokens: list[Token]) -> str:
    """The text of ``tokens`` that shows as text, with the ``@`` in it."""
    pieces = [
        token.content
        for block in tokens
        if block.type == "inline" and block.children and "@" in block.content
        for token, as_text in _texts(block.children)
        if as_text and "@" in token.content
    ]
    # A newline between pieces: a token's edge is where a name starts or ends.
    return "\n".join(pieces)


def _mentioned(mentions: str) -> dict[str, str]:
    return {name.casefold(): name for name in mentions.split()}


def _encodable(text: str) -> str:
    # A lone surrogate (JSON allows "\ud800") cannot be encoded for the sanitizer.
    return SURROGATE_RE.sub("\ufffd", text)


def sanitize(html: str) -> str:
    """The second wall: only the subset's tags and attributes, http(s)/mailto hrefs."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes=set(SCHEMES),
        link_rel=REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_relative=None,
        strip_comments=True,
    ).strip()
