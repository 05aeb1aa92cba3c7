"""A user's search text, parsed into terms we escape ourselves.

Nothing the user types reaches FTS5 or tsquery syntax: words are cut out by our
own rule (runs of letters, digits and underscores), and only then quoted into a
MATCH or tsquery string, so `"`, `*`, NEAR, OR, `-`, `^`, `:` and brackets are
plain text that at most splits words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_QUERY = 1000  # characters; longer is refused (422) by the web layer
WORD = re.compile(r"\w+")
FILTER = re.compile(r"\b(from|in):(\S+)", re.IGNORECASE)
PHRASE = re.compile(r'"([^"]*)"')


@dataclass
class Parsed:
    words: list[str] = field(default_factory=list)  # each matches by prefix
    phrases: list[list[str]] = field(default_factory=list)  # words in this order
    author: str | None = None
    room: str | None = None
    # A word's indexed terms that it is a prefix of, when the index listed them
    # (app.search.sqlite): searched as these exact terms instead of as a prefix.
    expansions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.words or self.phrases)


def parse(text: str) -> Parsed:
    parsed = Parsed()
    for key, value in FILTER.findall(text):
        if key.lower() == "from":
            parsed.author = value
        else:
            parsed.room = value
    text = FILTER.sub(" ", text)
    for phrase in PHRASE.findall(text):
        words = WORD.findall(phrase)
        if len(words) > 1:
            parsed.phrases.append(words)
        else:
            parsed.words += words
    # What is left (an unbalanced quote included) is plain words.
    parsed.words += WORD.findall(PHRASE.sub(" ", text))
    return parsed


def to_fts5(parsed: Parsed) -> str:
    """An FTS5 MATCH string: every token double-quoted (FTS5's string literal)."""
    terms = [_fts5_word(w, parsed.expansions.get(w)) for w in parsed.words]
    terms += ['"' + " ".join(_fts5(w) for w in phrase) + '"' for phrase in parsed.phrases]
    return " AND ".join(terms)


def to_tsquery(parsed: Parsed) -> str:
    """A to_tsquery('simple', …) string: every token single-quoted."""
    terms = [f"{_ts(w)}:*" for w in parsed.words]
    terms += ["(" + " <-> ".join(_ts(w) for w in phrase) + ")" for phrase in parsed.phrases]
    return " & ".join(terms)


def _fts5_word(word: str, expansion: list[str] | None) -> str:
    if expansion is None:
        return f'"{_fts5(word)}" *'
    return "(" + " OR ".join(f'"{_fts5(term)}"' for term in [word, *expansion]) + ")"


def _fts5(word: str) -> str:
    return word.replace('"', '""')  # \w+ has no quote; kept as the second wall


def _ts(word: str) -> str:
    return "'" + word.lower().replace("'", "''").replace("\\", "\\\\") + "'"
