"""Display names cleaned, and initials and their colours (app.faces)."""

from __future__ import annotations

import pytest

from app import faces
from app.models import MAX_DISPLAY_NAME

FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Ada   Lovelace ", "Ada Lovelace"),
        ("Ada\tLove\nlace\u2028x", "Ada Love lace x"),
        ("abc\u202egnp.exe\u202c", "abcgnp.exe"),  # a bidi override reorders what follows
        ("\u2067isolate\u2069 \u200bzero\ufeffwidth", "isolate zerowidth"),
        ("bell\x07\x00\x1b[31m", "bell[31m"),
        (
            "\U0001f469\u200d\U0001f469\u200d\U0001f467",
            "\U0001f469\u200d\U0001f469\u200d\U0001f467",
        ),
        ("e\u0301", "\u00e9"),  # NFC
        ("\ue000private\ud800", "private"),
        ("<b>&amp;</b>", "<b>&amp;</b>"),  # kept: it is escaped where shown
        (" \u200b\u202e ", None),
        ("", None),
    ],
)
def test_a_display_name_is_cleaned(raw: str, stored: str | None) -> None:
    assert faces.clean_display_name(raw) == stored


def test_a_display_name_is_limited_after_cleaning() -> None:
    assert faces.clean_display_name("\u202e" * 100 + "x" * MAX_DISPLAY_NAME) == "x" * 64
    with pytest.raises(faces.DisplayNameError, match="at most 64"):
        faces.clean_display_name("x" * (MAX_DISPLAY_NAME + 1))


@pytest.mark.parametrize(
    ("name", "letters"),
    [("Ada Lovelace", "AL"), ("bob_smith", "BS"), ("carol", "C"), ("d.e-f", "DE"), ("", "?")],
)
def test_initials(name: str, letters: str) -> None:
    assert faces.initials(name) == letters


def test_a_usernames_colour_is_stable_and_ignores_case() -> None:
    assert faces.hue("Alice") == faces.hue("alice")
    assert len({faces.hue(f"user{n}") for n in range(200)}) == faces.HUES
