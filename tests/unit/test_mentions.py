"""Finding @names in a text, and rendering the ones that mention someone."""

from __future__ import annotations

import pytest

from app.markup import mentionable, prepare, to_html
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


def test_names_in_code_or_link_text_mention_nobody() -> None:
    text = "`@bob` @carol\n```\n@dave\n```\n[@erin](https://x.org/@frank) **@gina** `a` @hal."
    assert mentionable(text) == ["carol", "gina", "hal.", "hal"]
    assert mentionable("> quoted @bob\n- listed @carol\n\n    indented @dave") == [
        "bob",
        "carol",
        "dave",  # indented code is not code here: it renders as text
    ]
    assert mentionable("no at sign") == [] and mentionable("a@bob.example") == []
    # A name the writer looked up anyway renders as text in code: nothing to click.
    assert "data-mention" not in to_html("`@bob`\n```\n@bob\n```", "bob")


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "@bob and @Carol, **@dave.** `@erin`",
        "> @bob\n- @bob\n\n[x](https://e.org/@bob) @bob@x @zz",
        "@" + "a" * 40,
        " ".join(f"@user{i}" for i in range(40)),
        "half \ud800 @bob",
    ],
)
def test_prepare_renders_what_to_html_renders_for_the_guessed_mentions(text: str) -> None:
    prepared = prepare(text)
    assert prepared.keys == mentionable(text)
    assert prepared.guess.casefold() == " ".join(prepared.keys)
    assert prepared.html == to_html(text, prepared.guess)
    # The writer found other mentions: rendered again for them.
    assert prepared.html_for(text, prepared.guess) is prepared.html
    assert prepared.html_for(text, "") == to_html(text, "")
    assert prepared.html_for(text, "Bob") == to_html(text, "Bob")
    assert prepared.html_for(text, "BOB") == to_html(text, "BOB")


def test_prepare_guesses_names_as_typed() -> None:
    # As the composer completes them: the username as it is spelled.
    assert prepare("hi @Carol and @bob").guess == "Carol bob"
    assert prepare("@Carol @carol").guess == "Carol"  # one name, as first typed
