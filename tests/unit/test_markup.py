"""Message formatting (app.markup): the Markdown subset, and hostile input kept inert."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from app.markup import sanitize, to_html

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
    a busy machine does not fail it."""
    started = time.process_time()
    html = to_html(PATHOLOGICAL[name], "bob")
    assert time.process_time() - started < 1.0, name
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
