"""A hit's snippet: a piece of the message around its first match, escaped, with
each matching word in ``<mark>``.

Done here, not by the database (FTS5's snippet(), ts_headline): both would mark
raw text we would then have to escape around, and they differ between backends.
Words are folded the way the indexes fold them (case, accents), so what is marked
is what matched.
"""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup, escape

from app.search.query import Parsed

# Letters and digits: the tokens FTS5's unicode61 and PostgreSQL's parser cut out.
TOKEN = re.compile(r"[^\W_]+")
WIDTH = 160  # characters of text around the first match
LEAD = 40  # characters before it


def fold(word: str) -> str:
    """Case- and accent-free: "Café" and "CAFE" are both "cafe"."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(parsed: Parsed) -> list[str]:
    """Every word of the query, folded; each marks the words it is a prefix of."""
    words = parsed.words + [w for phrase in parsed.phrases for w in phrase]
    return sorted({fold(t) for w in words for t in TOKEN.findall(w)}, key=len, reverse=True)


def snippet(text: str, parsed: Parsed) -> Markup:
    wanted = terms(parsed)
    hits = [m.span() for m in TOKEN.finditer(text) if _matches(fold(m.group()), wanted)]
    start = max(0, hits[0][0] - LEAD) if hits else 0
    end = min(len(text), start + WIDTH)
    if hits and start > 0:  # don't start inside a word
        space = text.rfind(" ", 0, hits[0][0])
        start = space + 1 if space >= start - 20 else start
    out = [Markup("…") if start > 0 else Markup("")]
    pos = start
    for hit_start, hit_end in hits:
        if hit_start >= end:
            break
        if hit_start < pos:
            continue
        out += [escape(text[pos:hit_start]), Markup("<mark>"), escape(text[hit_start:hit_end])]
        out.append(Markup("</mark>"))
        pos = hit_end
    out.append(escape(text[pos : max(pos, end)]))
    if max(pos, end) < len(text):
        out.append(Markup("…"))
    return Markup("").join(out)


def _matches(word: str, wanted: list[str]) -> bool:
    return any(word.startswith(term) for term in wanted)
