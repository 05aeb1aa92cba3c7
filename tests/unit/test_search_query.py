"""Search text becomes escaped terms; FTS syntax in it stays plain words."""

from __future__ import annotations

import sqlite3

import pytest

from app.search.query import parse, to_fts5, to_tsquery

HOSTILE = ['"', "*", "NEAR(a b)", "a OR b", "a AND b", "-x", "^a", '"unbalanced', ":", "(a", "a)"]


def test_words_phrases_and_filters() -> None:
    p = parse('from:alice in:general café "big cat" fi')
    assert (p.author, p.room) == ("alice", "general")
    assert p.words == ["café", "fi"] and p.phrases == [["big", "cat"]]
    assert to_fts5(p) == '"café" * AND "fi" * AND "big cat"'
    assert to_tsquery(p) == "'café':* & 'fi':* & ('big' <-> 'cat')"


@pytest.mark.parametrize("text", HOSTILE)
def test_fts_syntax_is_never_passed_through(text: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO t VALUES ('a b near or and x unbalanced')")
    match = to_fts5(parse(text))
    if match:
        db.execute("SELECT * FROM t WHERE t MATCH ?", (match,)).fetchall()  # no error


def test_snippets_mark_matches_in_escaped_text() -> None:
    from app.search.snippet import snippet

    text = "Tea at the <b>Café</b> & CAFETERIA, then café_au_lait"
    marked = str(snippet(text, parse("cafe")))
    assert marked == (
        "Tea at the &lt;b&gt;<mark>Café</mark>&lt;/b&gt; &amp; <mark>CAFETERIA</mark>, "
        "then <mark>café</mark>_au_lait"
    )
    assert str(snippet("<script>x</script>", parse("nothing"))) == "&lt;script&gt;x&lt;/script&gt;"


def test_a_long_message_is_cut_around_its_first_match() -> None:
    from app.search.snippet import snippet

    text = "word " * 100 + "needle " + "tail " * 100
    marked = str(snippet(text, parse("need")))
    assert marked.startswith("…") and marked.endswith("…") and "<mark>needle</mark>" in marked
    assert len(marked) < 250


def test_a_listed_prefix_becomes_its_exact_terms() -> None:
    p = parse('caf "big cat"')
    p.expansions["caf"] = ["cafe", "cafeteria"]
    assert to_fts5(p) == '("caf" OR "cafe" OR "cafeteria") AND "big cat"'
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO t VALUES ('the big cat at the Café')")
    assert db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (to_fts5(p),)).fetchone() == (1,)
