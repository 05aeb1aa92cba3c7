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
