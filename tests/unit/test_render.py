"""Message text: escaped first, and only http(s) URLs become links."""

from __future__ import annotations

import pytest

from app.render import linkify

REL = 'rel="noopener nofollow ugc" target="_blank"'


def link(url: str) -> str:
    return f'<a href="{url}" {REL}>{url}</a>'


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("plain <b>text</b> & more", "plain &lt;b&gt;text&lt;/b&gt; &amp; more"),
        ("see https://example.com/a?b=1&c=2.", f"see {link('https://example.com/a?b=1&amp;c=2')}."),
        ("(http://example.com/x_(y))", f"({link('http://example.com/x_(y)')})"),
        ("(http://example.com)", f"({link('http://example.com')})"),
        ("HTTPS://EXAMPLE.COM", link("HTTPS://EXAMPLE.COM")),
        (
            'x http://a.b/"onmouseover="alert(1)',
            f"x {link('http://a.b/')}&#34;onmouseover=&#34;alert(1)",
        ),
        ("http://a.b/<script>", f"{link('http://a.b/')}&lt;script&gt;"),
    ],
)
def test_linkify(text: str, html: str) -> None:
    assert linkify(text) == html


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "javascript://example.com/%0aalert(1)",
        "data:text/html,<b>x</b>",
        "ftp://example.com/file",
        "http://",
        "xhttp://example.com",
        "//example.com/path",
    ],
)
def test_only_http_urls_become_links(text: str) -> None:
    assert "<a " not in linkify(text)
    assert "<b>" not in linkify(text)
