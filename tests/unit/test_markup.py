"""Message formatting (app.markup): the Markdown subset, and hostile input kept inert."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app import markup
from app.markup import Prepared, mentionable, prepare, sanitize, to_html

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_hardening_input import VECTORS, Tree  # noqa: E402

REL = 'target="_blank" rel="nofollow noopener noreferrer"'
MENTION = '<span class="mention" data-mention="{0}">@{1}</span>'


def link(url: str, text: str | None = None) -> str:
    return f'<a href="{url}" {REL}>{url if text is None else text}</a>'


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("plain text", "<p>plain text</p>"),
        (
            "**bold** and *italic* and _this_",
            "<p><strong>bold</strong> and <em>italic</em> and <em>this</em></p>",
        ),
        ("`a <b> & c`", "<p><code>a &lt;b&gt; &amp; c</code></p>"),
        ("> quoted\n> twice", "<blockquote>\n<p>quoted<br>\ntwice</p>\n</blockquote>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("3. three\n4. four", '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>'),
        ("line one\nline two", "<p>line one<br>\nline two</p>"),
        (
            "see https://example.com/a?b=1&c=2.",
            f"<p>see {link('https://example.com/a?b=1&amp;c=2')}.</p>",
        ),
        ("(http://example.com/x_(y))", f"<p>({link('http://example.com/x_(y)')})</p>"),
        ("[docs](https://example.com/d)", f"<p>{link('https://example.com/d', 'docs')}</p>"),
        ("[mail](mailto:a@example.com)", f"<p>{link('mailto:a@example.com', 'mail')}</p>"),
        ("<https://example.com>", f"<p>{link('https://example.com')}</p>"),
        # Not formatting here: headings, rules, indented code, tables, entities, bare names.
        ("# not a heading", "<p># not a heading</p>"),
        ("title\n---", "<p>title<br>\n---</p>"),
        ("    indented", "<p>indented</p>"),
        ("| a | b |\n|---|---|", "<p>| a | b |<br>\n|---|---|</p>"),
        ("&amp; &lt;", "<p>&amp;amp; &amp;lt;</p>"),
        (
            "app.py and www.example.com and bob@example.com",
            "<p>app.py and www.example.com and bob@example.com</p>",
        ),
        ("[ref]: https://example.com", "<p>[ref]: " + link("https://example.com") + "</p>"),
    ],
)
def test_the_subset(text: str, html: str) -> None:
    assert to_html(text) == html


def test_a_fenced_code_block_keeps_its_whitespace_and_escapes() -> None:
    code = "def f(x):\n    return  x < 1 and '<b>'\n\n\tindented\n"
    assert to_html(f"```python\n{code}```") == (
        "<pre><code>def f(x):\n    return  x &lt; 1 and '&lt;b&gt;'\n\n\tindented\n</code></pre>"
    )


def test_a_4000_character_code_block_is_kept_whole_and_fast() -> None:
    line = "x = [1,  2]  # <i>\n"
    body = line * ((4000 - 7) // len(line))
    body += "y" * (4000 - 7 - len(body) - 1) + "\n"
    assert len(f"```\n{body}```") == 4000
    started = time.process_time()
    html = to_html(f"```\n{body}```")
    assert time.process_time() - started < 0.5
    assert html == f"<pre><code>{body.replace('<', '&lt;').replace('>', '&gt;')}</code></pre>"


def test_mentions_keep_working_inside_formatting() -> None:
    bob = MENTION.format("bob", "bob")
    assert to_html("**@bob** *hi @Bob.*", "bob") == (
        f"<p><strong>{bob}</strong> <em>hi {MENTION.format('bob', 'Bob')}.</em></p>"
    )
    assert to_html("> @bob said\n- @bob", "bob") == (
        f"<blockquote>\n<p>{bob} said</p>\n</blockquote>\n<ul>\n<li>{bob}</li>\n</ul>"
    )
    # Not in code, not in a link's text or address, and only the mentioned users.
    assert to_html("`@bob` [@bob](https://x.org/@bob) @carol", "bob") == (
        f"<p><code>@bob</code> {link('https://x.org/@bob', '@bob')} @carol</p>"
    )
    assert to_html("@bob<script>", "bob") == f"<p>{bob}&lt;script&gt;</p>"
    assert to_html("@bob", "") == "<p>@bob</p>"


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](\x01javascript:alert(1))",
        "[x](<javascript:alert(1)>)",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](file:///etc/passwd)",
        "[x](/relative/path)",
        "[x](//example.com)",
        "[x]: javascript:alert(1)\n\n[x]",
        "<javascript:alert(1)>",
        "javascript:alert(1)",
        "javascript://example.com/%0aalert(1)",
        "data:text/html,<b>x</b>",
        "ftp://example.com/file",
        "xhttp://example.com",
    ],
)
def test_only_http_https_and_mailto_links(text: str) -> None:
    html = to_html(text)
    assert "<a " not in html, html
    assert "<b>" not in html


@pytest.mark.parametrize(
    "text",
    [
        "![](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "![x](data:text/html,<script>alert(1)</script>)",
        "![tracker](https://example.com/pixel.gif)",
        '<img src="https://example.com/x.png">',
    ],
)
def test_images_are_never_rendered(text: str) -> None:
    html = to_html(text)
    assert_only_allowed(html)
    assert not [e for e in Tree(html).elements if e.tag == "img" or "src" in e.attrs]
    assert not [e for e in Tree(html).elements if "data:" in e.attrs.get("href", "")]


def test_an_image_of_an_http_url_is_a_link_to_it() -> None:
    assert to_html("![pic](https://example.com/p.png)") == (
        f"<p>!{link('https://example.com/p.png', 'pic')}</p>"
    )


@pytest.mark.parametrize(
    "text",
    [
        '<https://example.com/"onmouseover="alert(1)>',
        "<https://example.com/'onmouseover='alert(1)>",
        'https://example.com/"><script>alert(1)</script>',
        "https://example.com/?q='onmouseover=alert(1)//",
        '[x](https://example.com/" onmouseover="alert(1))',
        '[x](https://example.com/ "title" onmouseover="alert(1)")',
        '[x](<https://example.com/" onclick="alert(1)>)',
    ],
)
def test_quotes_in_links_never_break_out_of_the_href(text: str) -> None:
    html = to_html(text)
    assert_only_allowed(html)
    for element in Tree(html).elements:
        if element.tag == "a":
            assert set(element.attrs) == {"href", "target", "rel"}
            # A double quote is percent-encoded; a single one inside "…" is harmless.
            assert '"' not in element.attrs["href"]


@pytest.mark.parametrize(
    "text",
    [
        '<div hx-get="/logout" hx-trigger="load">x</div>',
        '**<b hx-post="/api/rooms">x</b>**',
        "[x](https://example.com){hx-get=/logout}",
        '`<a hx-get="/x">`',
        '> <span hx-swap-oob="true" id="messages">',
        '<p style="position:fixed" onclick="alert(1)">x</p>',
        "<script>alert(1)</script>",
        "```\n</code></pre><script>alert(1)</script>\n```",
        "<!-- comment --><style>*{}</style>",
    ],
)
def test_no_html_from_the_text_reaches_the_output(text: str) -> None:
    html = to_html(text)
    assert_only_allowed(html)
    assert "<script" not in html and "<div" not in html and "<style" not in html


@pytest.mark.parametrize("name", VECTORS)
def test_every_part_1_vector_is_inert(name: str) -> None:
    html = to_html(VECTORS[name].strip(), "bob")
    assert_only_allowed(html)


def test_the_sanitizer_alone_strips_what_markdown_would_never_make() -> None:
    dirty = (
        '<p style="color:red" onclick="x()" hx-get="/a" data-hx-post="/b" class="c" id="i">'
        '<a href="javascript:alert(1)" hx-trigger="load" onmouseover="x()">j</a>'
        '<a href="https://ok.example/" rel="opener" target="_self">ok</a>'
        '<span class="mention evil" data-mention="bob" data-x="1">@bob</span>'
        '<img src="x" onerror="alert(1)"><iframe src="https://x"></iframe>'
        '<script>alert(1)</script><b>b</b><code class="language-x">c</code></p><h1>big</h1>'
    )
    assert sanitize(dirty) == (
        f'<p><a {REL}>j</a><a href="https://ok.example/" {REL}>ok</a>'
        '<span class="mention" data-mention="bob">@bob</span>'
        "b<code>c</code></p>big"
    )


PATHOLOGICAL = {
    "emphasis-10000-deep": "*" * 10_000 + "a" + "*" * 10_000,
    "strong-10000-deep": "**" * 10_000 + "a" + "**" * 10_000,
    "mixed-10000-deep": "*_" * 10_000 + "a" + "_*" * 10_000,
    "quotes-10000-deep": ">" * 10_000 + " a",
    "lists-10000-deep": "- " * 10_000 + "a",
    "indented-lists": "\n".join("  " * i + "- a" for i in range(60)),
    "brackets-10000-deep": "[" * 10_000 + "a" + "]" * 10_000,
    "unclosed-links": "[a](http://x " * 2_000,
    "nested-links": "[" * 5_000 + "](http://x)" * 5_000,
    "backticks": "`" * 10_000 + "a",
    "angle-brackets": "<" * 10_000,
    "underscores": "_a" * 5_000,
    "mentions": "@bob " * 800,
    "scheme-separators": "http:// " * 500,
    "many-urls": "http://a.b " * 363,
}


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_pathological_input_is_quick_and_bounded(name: str) -> None:
    """Deep nesting neither recurses without bound (markdown-it stops nesting blocks at
    MAX_NESTING) nor takes long; emphasis is paired without recursion. CPU time, so
    a busy machine does not fail it. Linear inputs of 60,000 characters take up to
    ~1 s (nested-links); a quadratic one would take minutes."""
    started = time.process_time()
    html = to_html(PATHOLOGICAL[name], "bob")
    assert time.process_time() - started < 5.0, name
    assert_only_allowed(html)
    depth = max_block_depth(html)
    assert depth <= 25, depth


def test_a_lone_surrogate_is_shown_as_a_replacement_character() -> None:
    assert to_html("half \ud800 of a pair") == "<p>half \ufffd of a pair</p>"


ALLOWED = {
    "p": set(),
    "br": set(),
    "strong": set(),
    "em": set(),
    "code": set(),
    "pre": set(),
    "blockquote": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "a": {"href", "rel", "target"},
    "span": {"class", "data-mention"},
}


def assert_only_allowed(html: str) -> None:
    """Only the subset's tags and attributes; links are http(s)/mailto and open safely."""
    for element in Tree(html).elements:
        assert element.tag in ALLOWED, (element.tag, html[:200])
        assert set(element.attrs) <= ALLOWED[element.tag], (element.tag, element.attrs)
        if element.tag == "a":
            assert element.attrs["rel"] == "nofollow noopener noreferrer"
            assert element.attrs["target"] == "_blank"
            href = element.attrs.get("href")
            assert href is None or re.match(r"(https?|mailto):", href), href
        if element.tag == "span":
            assert element.attrs["class"] == "mention"


BLOCKS = re.compile(r"<(/?)(blockquote|ul|ol|li)\b")


def max_block_depth(html: str) -> int:
    depth = deepest = 0
    for closing, _ in BLOCKS.findall(html):
        depth += -1 if closing else 1
        deepest = max(deepest, depth)
    return deepest


def test_scheme_separators_cost_linear_time() -> None:
    """markdown-it-py's own inline linkify rule searched the whole text before each
    "://" (quadratic: 16 times the time for 4 times the text); ours looks at a
    bounded tail (about 4 times)."""

    def cost(n: int) -> float:
        text = "http:// " * (n // 8)
        started = time.process_time()
        for _ in range(5):
            to_html(text)
        return time.process_time() - started

    cost(500)
    assert cost(4000) < 8 * cost(1000)
    assert to_html("see http://a.b and https://c.d/x_y_z*") == (
        f"<p>see {link('http://a.b')} and {link('https://c.d/x_y_z')}*</p>"
    )


# Chat text: plain words with punctuation (most of what the fast path takes), and
# every character or line start it must leave to the parser.
WORDS = ["ok", "the", "Café", "naïve", "👍", "👨\u200d👩\u200d👧", "12", "2024", "x", "bob"]
AFFIXES = ["", "", "", ",", ".", "?", "!", "'", '"', "(", ")", "#", "-", "/", "=", "%", "$"]
TRICKY = [
    *"*_~`[]()!<>&\\|@:.#>-+=/",
    *["\n", "\t", "\r", "", " ", "    ", "\xa0", "\u3000", "\u2028", "\x00", "\x1f", "\x85"],
    *["\ud800", "\udfff", "\ufeff", "1.", "2)", "---", "===", "```", "~~~", "**", "__"],
    *["x.com", "www.", "http://", "https://a.b", "mailto:", "//", "@bob", "&amp;", "<b>"],
]


def sentences(trick: str) -> st.SearchStrategy[str]:
    """Words with punctuation around them, salted with ``trick`` anywhere (often, so
    that "_ok_" or "\\!" come up, and not only next to others the parser gets anyway)."""
    word = st.sampled_from(WORDS)
    affix = st.sampled_from(AFFIXES) | st.just(trick)
    token = st.tuples(affix, st.one_of(word, word, st.just(trick)), affix)
    return st.lists(token.map("".join), min_size=1, max_size=8).map(" ".join)


def chat_texts() -> st.SearchStrategy[str]:
    """Plain sentences, salted ones, any pieces mixed, any text."""
    salted = st.sampled_from(TRICKY).flatmap(sentences)
    pieces = st.sampled_from(WORDS + AFFIXES + TRICKY) | st.characters()
    mixed = st.lists(pieces, max_size=20).map("".join)
    return sentences("") | salted | mixed | st.text(max_size=20)


def both_paths(text: str) -> tuple[object, object]:
    """What prepare(), to_html() and mentionable() give for ``text``, and the same
    with the fast path off."""
    fast = (prepare(text), to_html(text, "bob"), mentionable(text))
    with patch.object(markup, "_plain", return_value=False):
        full = (prepare(text), to_html(text, "bob"), mentionable(text))
    return fast, full


# No deadline: a busy machine (two cores, three test workers) is not a failure.
@settings(max_examples=1000, deadline=None, database=None)
@given(chat_texts())
def test_the_fast_path_renders_what_the_full_path_does(text: str) -> None:
    event("plain" if markup._plain(text) else "parsed")
    fast, full = both_paths(text)
    assert fast == full


CARRIERS = ["{0}", "{0}ok", "ok{0}", "{0}ok{0}", "a {0}ok{0} b", "ok {0} ok", "{0} ok", "ok {0}"]
CARRIERS += ["ok{0}ok", "1{0} ok", "12{0}", "x{0}x{0}x", "{0}{0}{0} ok", "ok {0}{0}{0}"]


@pytest.mark.parametrize("trick", TRICKY)
def test_each_tricky_piece_in_plain_words_renders_as_parsed(trick: str) -> None:
    """The salted sentences of the property test, every one of them: each exclusion
    of the fast path is tested every run, not in most runs."""
    for carrier in CARRIERS:
        fast, full = both_paths(carrier.format(trick))
        assert fast == full, carrier.format(trick)


@pytest.mark.parametrize(
    "text",
    [
        "a message of about the usual length, with a few words in it #12",
        "Sounds good, see you at 5.",
        "really? yes! ok. next",
        'she said "fine" and it\'s (mostly) done',
        "Café à 10h, naïve 👍 👨\u200d👩\u200d👧",
        "2024 was 50% better, x = 3 and/or 4",
        "/me waves",
    ],
)
def test_plain_text_takes_the_fast_path(text: str) -> None:
    assert markup._plain(text)
    assert prepare(text) == Prepared([], "", f"<p>{text}</p>")


@pytest.mark.parametrize(
    "text",
    [
        *["**bold**", "_it_", "`code`", "~~x~~", "[x](https://a.b)", "a\\b", "a | b"],
        *["1. first", "2) second", "2024.", "- item", "+ item", "# title", "> quote"],
        *["see x.com", "e.g. this", "https://a.b", "www.a.b", "//a.b", "mailto:a", "hi @bob"],
        *["a &amp; b", "a <b>", "a\nb", "a\tb", " lead", "trail ", "", "a\xa0b", "a\u3000b"],
        *["half \ud800", "a\x00b", "a\rb"],
    ],
)
def test_anything_else_is_parsed(text: str) -> None:
    assert not markup._plain(text)
