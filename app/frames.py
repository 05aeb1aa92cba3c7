"""WebSocket text frames built once and written to many sockets.

The hub encodes a message's frame here once and hands the bytes to each
socket's write_frame (app.fastws). Kept apart from both so the hub does not
depend on the web layer or on uvicorn.
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81  # FIN + opcode 1 (text); server frames are never masked


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455, section 5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size < 65536:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload
