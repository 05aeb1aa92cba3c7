"""Finding @names in a text, and rendering the ones that mention someone."""

from __future__ import annotations

from app.markup import to_html
from app.mentions import MAX_MENTIONS, candidates


def test_candidates_are_distinct_casefolded_and_capped() -> None:
    assert candidates("no at sign") == []
    assert candidates("@Bob and @bob, @al (too short) and mail bob@example.com") == ["bob"]
    # A name followed by a full stop may be "bob." or "bob": both are looked up.
    assert candidates("thanks @bob.") == ["bob.", "bob"]
    many = " ".join(f"@user{i}" for i in range(500))
    assert candidates(many) == [f"user{i}" for i in range(MAX_MENTIONS)]


def test_only_mentioned_names_render_as_mentions() -> None:
    html = to_html("hi @BOB. and @carol, see https://x.org/@bob", "bob")
    assert html == (
        '<p>hi <span class="mention" data-mention="bob">@BOB</span>. and @carol, see '
        '<a href="https://x.org/@bob" target="_blank" rel="nofollow noopener noreferrer">'
        "https://x.org/@bob</a></p>"
    )
    assert to_html("@bob<script>", "bob") == (
        '<p><span class="mention" data-mention="bob">@bob</span>&lt;script&gt;</p>'
    )
    assert to_html("@bob", "") == "<p>@bob</p>"
