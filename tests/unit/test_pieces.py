"""Small pure functions: origins, redirects, frames, rate limits, events."""

from __future__ import annotations

import pytest

from app.backends.memory import MemoryRateLimiter
from app.events import Event
from app.web.origins import normalize_origin
from app.web.pages import safe_next
from app.web.ws import FrameError, parse_after, parse_frame


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("http://Example.com", "http://example.com:80"),
        ("https://example.com:443", "https://example.com:443"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("null", ""),
        ("file://x", ""),
    ],
)
def test_normalize_origin(origin: str, normal: str) -> None:
    assert normalize_origin(origin) == normal


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/rooms/2?x=1", "/rooms/2?x=1"),
        ("", "/"),
        ("rooms", "/"),
        ("//evil", "/"),
        ("/\\evil", "/"),
        ("https://evil/", "/"),
        ("/\nSet-Cookie:x", "/"),
    ],
)
def test_safe_next(target: str, safe: str) -> None:
    assert safe_next(target) == safe


def test_parse_frame() -> None:
    assert parse_frame('{"message": "hi", "HEADERS": {}}') == ("hi", None)
    assert parse_frame('{"message": "hi", "client_id": "a"}') == ("hi", "a")
    for bad in ["x", "[]", "null", '{"message": null}', '{"message": "a", "client_id": []}']:
        with pytest.raises(FrameError):
            parse_frame(bad)


def test_parse_after() -> None:
    assert parse_after("12") == 12
    assert parse_after("0") == 0
    for bad in [None, "-1", "x", "1e3", "9" * 30]:
        assert parse_after(bad) is None


def test_event_round_trip() -> None:
    event = Event("message", "<p>ünïcode\nlines</p>", 42)
    assert Event.decode(event.encode()) == event


async def test_rate_limiter_allows_a_burst_then_refuses() -> None:
    limiter = MemoryRateLimiter(rate=1, burst=3)
    assert [await limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.hit("a") > 0
    assert await limiter.hit("b") == 0.0


async def test_rate_limit_zero_turns_it_off() -> None:
    limiter = MemoryRateLimiter(rate=0, burst=1)
    assert all([await limiter.hit("a") == 0.0 for _ in range(100)])


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frame_matches_the_websockets_library(size: int) -> None:
    from websockets.frames import Frame, Opcode

    from app.frames import text_frame

    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
