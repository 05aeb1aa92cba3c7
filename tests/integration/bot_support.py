"""A bot on a local port: a real HTTP server (asyncio streams) whose answer each
test chooses, recording every request it gets, for the webhook tests."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from support import Server, query


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        stamp = self.headers["x-talkroom-timestamp"]
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest(
            "sha256=" + mac.hexdigest(), self.headers["x-talkroom-signature"]
        )


Answer = Callable[[Received, asyncio.StreamWriter], Awaitable[None]]


def reply(status: int = 200, body: bytes = b"", content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
    return (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def echo(request: Received, writer: asyncio.StreamWriter) -> None:
    text = request.json["message"]["text"]
    writer.write(reply(200, json.dumps({"text": f"echo: {text}"}).encode()))


@dataclass
class BotServer:
    """Answers each POST with ``answer`` (echo by default)."""

    answer: Answer = echo
    received: list[Received] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> BotServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")[1:]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(headers, body, time.monotonic())
            self.received.append(request)
            await self.answer(request, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active -= 1
            writer.close()

    async def wait_requests(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.received)} of {count} requests")
            await asyncio.sleep(0.05)
        return self.received


def make_bot(server: Server, name: str, url: str) -> tuple[int, str, str]:
    """``talkroom createbot``: the bot's id, API token and webhook secret."""
    out = server.cli("createbot", name, "--webhook", url).stdout
    bot_id = int(re.search(r"\(id (\d+)\)", out).group(1))  # type: ignore[union-attr]
    token = re.search(r"^(tr_\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    secret = re.search(r"^(whsec_\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    return bot_id, token, secret


async def deliveries(server: Server, bot_id: int) -> list[tuple[Any, ...]]:
    """(id, status, attempts, last_status, last_error) of the bot's deliveries."""
    return await query(
        server,
        "SELECT id, status, attempts, last_status, last_error FROM webhook_deliveries"
        " WHERE bot_id = :b ORDER BY id",
        b=bot_id,
    )


async def wait_deliveries(
    server: Server,
    bot_id: int,
    done: Callable[[list[tuple[Any, ...]]], bool],
    timeout: float = 20,
) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await deliveries(server, bot_id)
        if rows and done(rows):
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"deliveries are {rows}")
        await asyncio.sleep(0.1)


def settled(rows: list[tuple[Any, ...]]) -> bool:
    return all(row[1] in ("done", "failed", "dropped") for row in rows)
