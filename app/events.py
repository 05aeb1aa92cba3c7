"""What travels between workers: an event, rendered once, encoded as bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["message", "notice", "presence", "state", "close", "resync", "typing", "user"]

LOBBY = "lobby"
USER_PREFIX = "user:"


def room_channel(room_id: int) -> str:
    return f"room:{room_id}"


def user_channel(user_id: int) -> str:
    """Events for one user's sockets alone, on whichever worker (their unread counts)."""
    return f"{USER_PREFIX}{user_id}"


def activity_key(room_id: int) -> int:
    """The lobby state key of a room's newest message seq (app.chat.Activity): below
    every other key, as room ids are positive."""
    return -2 - room_id


@dataclass(frozen=True, slots=True)
class Event:
    """``message`` events carry the room's ``seq``; the others are not ordered.

    ``typing`` (on a room channel) and ``user`` (on a user's channel) are shown
    and forgotten: never saved, never resumed, outside the seq order.

    ``close`` carries a WebSocket close code in ``seq`` (and, in ``html``, the id
    of the one user whose sockets it closes, if it is for one); ``resync`` asks every
    connection to repair from the database (pub/sub may have lost events).

    Presence is batched, so a storm of joins cannot flood the outboxes:
    ``presence`` is one "X joined/left" line (lines accumulate, the oldest are
    dropped past a few dozen) and ``state`` is a fragment that replaces itself:
    only the newest one per key in ``seq`` is sent (``MEMBERS`` for a room's member
    list, the room id for its online badge in the lobby, ``ALL_ONLINE`` for every
    badge at once, which a lobby socket gets first).
    """

    kind: Kind
    html: str = ""
    seq: int = 0
    # When a message was saved (Unix time), for the save-to-send latency metric.
    saved_at: float = 0.0

    def encode(self) -> bytes:
        stamp = f" {self.saved_at!r}" if self.saved_at else ""
        return f"{self.kind} {self.seq}{stamp}\n{self.html}".encode()

    @classmethod
    def decode(cls, data: bytes) -> Event:
        head, _, body = data.partition(b"\n")
        kind, seq, *stamp = head.decode().split(" ")
        saved_at = float(stamp[0]) if stamp else 0.0
        return cls(kind=kind, html=body.decode(), seq=int(seq), saved_at=saved_at)  # type: ignore[arg-type]  # kind: written by encode()


RESYNC = Event("resync")
MEMBERS = 0  # the state key of a room's member list (room ids start at 1)
ALL_ONLINE = -1  # the state key of every room's online badge at once
ROOM_LIST = -2  # the state key of "the room list changed" (a new public room)
