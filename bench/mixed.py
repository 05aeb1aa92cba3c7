"""The mixed scenario's changes: edits and reactions over the HTTP API, typing over the
socket, beside the loadgen's new messages (`run.py mixed`, issue 12).

An edit's new text carries a marker of its own ("bench r=… n=K t=…"), so receivers
count it like a new message. A reaction's frame still carries the message's old
text, so it is counted by message id: `pending` maps the message to the reaction's
(n, sent time) until every receiver has seen it. Each message gets at most one edit
and one reaction, so one entry per message is enough.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from urllib.parse import quote

import orjson
from picows import WSMsgType

EMOJI = quote("👍")
TYPING_EVERY_S = 2.0  # under the contract's throttle, so each one is relayed


class Lane:
    """One sender's keep-alive HTTP connection: its changes go out in order, one at a time."""

    def __init__(self, port: int, head: str, errors: Counter[str]) -> None:
        self.port = port
        self.head = head  # Cookie and X-CSRF-Token lines
        self.errors = errors
        self.queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
        self.task = asyncio.create_task(self.run())
        self.latencies_ms: list[float] = []

    def put(self, method: str, path: str, body: bytes = b"") -> None:
        self.queue.put_nowait((method, path, body))

    async def run(self) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while True:
            method, path, body = await self.queue.get()
            t0 = time.perf_counter()
            status = 0
            # uvicorn closes a keep-alive connection idle for 5 s, and a lane can sit
            # idle that long between steps: a connection closed or reset before it
            # answered is opened again and the request sent once more (it was never
            # read; were it applied twice, receivers would count a duplicate).
            for _ in range(2):
                try:
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    status = await self.exchange(reader, writer, method, path, body)
                except Exception as exc:  # noqa: BLE001 - a dead lane would drop every change after it silently
                    self.errors[type(exc).__name__] += 1
                    status = -1
                if status <= 0 and writer is not None:
                    writer.close()
                    reader = writer = None
                if status > 0:
                    break
            if status <= 0:
                self.errors[f"{method} unanswered"] += 1
                continue
            self.latencies_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                self.errors[f"{method} {status}"] += 1

    async def exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        body: bytes,
    ) -> int:
        """The response's status, 0 if the connection was closed before one came."""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.head}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        line = await reader.readline()
        if not line:
            return 0  # closed by the server before it answered
        status = int(line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    def close(self) -> None:
        self.task.cancel()


class Changes:
    """Which messages a sender may still edit or react to, and the reactions in flight."""

    def __init__(self, edits: float, reactions: float) -> None:
        self.edits = edits
        self.reactions = reactions
        self.edited: set[int] = set()
        self.reacted: set[int] = set()
        self.pending: dict[int, tuple[bytes, int, int]] = {}  # message -> (run, n, sent ns)
        self.sent: Counter[str] = Counter()

    def choose(self, draw: float, own: list[int]) -> tuple[str, int]:
        """("message", 0), ("edit", id) or ("react", id) for a sender's next step."""
        if draw < self.edits:
            target = next((m for m in reversed(own[-5:]) if m not in self.edited), 0)
            if target:
                self.edited.add(target)
                return "edit", target
        elif draw < self.edits + self.reactions:
            target = next((m for m in reversed(own[-5:]) if m not in self.reacted), 0)
            if target:
                self.reacted.add(target)
                return "react", target
        return "message", 0

    def send(
        self, lane: Lane, kind: str, room: int, message: int, run: str, n: int, text: str
    ) -> None:
        path = f"/api/rooms/{room}/messages/{message}"
        if kind == "edit":
            lane.put("PATCH", path, orjson.dumps({"text": text}))
        else:
            self.pending[message] = (run.encode(), n, time.time_ns())
            lane.put("PUT", f"{path}/reactions/{EMOJI}")
        self.sent[kind] += 1


async def keep_typing(clients: list, running: list[bool]) -> None:
    """Every typing socket says {"typing": true} each TYPING_EVERY_S, staggered."""
    frame = orjson.dumps({"typing": True})
    if not clients:
        return
    gap = TYPING_EVERY_S / len(clients)
    while running[0]:
        for c in clients:
            if c.open and c.transport is not None:
                c.transport.send(WSMsgType.TEXT, frame)
            await asyncio.sleep(gap)
