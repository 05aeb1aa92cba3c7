"""A stand-in for the transport under Connection and Hub: the logic under test is real."""

from __future__ import annotations

import struct

from app.connection import Connection


def payloads(frames: bytes) -> list[str]:
    """The texts of unmasked text frames as app.frames.text_frame writes them."""
    texts: list[str] = []
    while frames:
        size, start = frames[1], 2
        if size == 126:
            size, start = struct.unpack("!H", frames[2:4])[0], 4
        elif size == 127:
            size, start = struct.unpack("!Q", frames[2:10])[0], 10
        texts.append(frames[start : start + size].decode())
        frames = frames[start + size :]
    return texts


class RecordingSocket:
    """Takes frames written directly unless told it is full (as fastws's writer refuses
    a transport that is paused); ``sent`` holds every text the client got, either way."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.writes: list[bytes] = []  # the direct writes, one entry per call
        self.full = False
        self.closed: int | None = None

    def write_frame(self, frame: bytes) -> bool:
        if self.full:
            return False
        self.writes.append(frame)
        self.sent.extend(payloads(frame))
        return True

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int) -> None:
        if self.closed is None:
            self.closed = code


def make(
    history: dict[int, str], cursor: int = 0, outbox: int = 100
) -> tuple[Connection, RecordingSocket]:
    """A connection in room 1 whose catch-up reads ``history`` (seq: html)."""
    socket = RecordingSocket()

    async def catch_up(
        room_id: int, after: int, need: int = 0, since: float = 0.0
    ) -> tuple[str, int] | None:
        missed = [seq for seq in sorted(history) if seq > after]
        if not missed:
            return None
        return "".join(history[s] for s in missed), missed[-1]

    conn = Connection(
        socket,
        room_id=1,
        user_id=1,
        username="u",
        catch_up=catch_up,
        outbox_size=outbox,
    )
    conn.cursor = cursor
    return conn, socket


def stored(seqs: range) -> dict[int, str]:
    return {seq: f"<m {seq}>" for seq in seqs}
