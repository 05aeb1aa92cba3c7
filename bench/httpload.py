"""Raw HTTP/1.1 keep-alive load client for `run.py http`: N connections, each sending
its next request as soon as the previous response is complete, every response checked.

    httpload.py SPEC.json   (written by http_scenario.py; prints one JSON result line)

A bare asyncio Protocol on uvloop: no HTTP library, a response is parsed just far
enough to find its end (Content-Length or chunked) and checked against the spec:
the status, the needles (e.g. `id="message-123"` of every message the page must
show) and, for posts, the JSON body's `id`. Its own CPU is measured and reported
(`client_cpu_pct`): near 100 % means the client, not the server, is the limit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

import orjson
import uvloop
from measure import Window, percentile

HOST = "127.0.0.1"


class Stats:
    def __init__(self) -> None:
        self.measuring = False
        self.t0 = 0.0
        self.lat: list[float] = []
        self.ok = 0
        self.errors = 0
        self.error_kinds: dict[str, int] = {}
        self.bytes = 0
        self.post_ids: set[int] = set()

    def error(self, kind: str) -> None:
        if self.measuring:
            self.errors += 1
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


class Client(asyncio.Protocol):
    """One keep-alive connection: request, wait for the whole response, check, repeat."""

    def __init__(self, spec: dict[str, Any], index: int, stats: Stats, done: asyncio.Event):
        self.stats = stats
        self.done = done
        self.index = index
        self.method = spec["method"]
        self.expect = spec["expect_status"]
        self.needles = [n.encode() for n in spec.get("needles", [])]
        self.head = (
            f"{self.method} {spec['path']} HTTP/1.1\r\nHost: {HOST}\r\n{spec['headers'][index]}"
        ).encode()
        self.post = self.method == "POST"
        self.count = 0
        self.buf = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.send()

    def request_bytes(self) -> bytes:
        if not self.post:
            return self.head + b"\r\n"
        self.count += 1
        self.text = f"bench http c{self.index} n{self.count}"
        body = orjson.dumps({"text": self.text})
        return b"%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            self.head,
            len(body),
            body,
        )

    def send(self) -> None:
        if self.stopping or self.transport is None:
            self.done.set() if self.stopping else None
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.request_bytes())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            start = end + 4
            cl = head.find(b"\r\ncontent-length:")
            if cl >= 0:
                eol = head.find(b"\r\n", cl + 2)
                length = int(head[cl + 17 : eol if eol >= 0 else None])
                if len(self.buf) < start + length:
                    return
                body = bytes(self.buf[start : start + length])
                del self.buf[: start + length]
            elif b"transfer-encoding: chunked" in head:
                parsed = dechunk(self.buf, start)
                if parsed is None:
                    return
                body, used = parsed
                del self.buf[:used]
            else:
                body = b""
                del self.buf[:start]
            self.complete(head, body)
            if not self.buf:
                return

    def complete(self, head: bytes, body: bytes) -> None:
        now = time.perf_counter()
        stats = self.stats
        status = int(head[9:12])
        counted = stats.measuring and self.sent_at >= stats.t0
        bad = ""
        if status != self.expect:
            bad = f"status {status}"
        elif self.post:
            try:
                reply = orjson.loads(body)
                if not isinstance(reply.get("id"), int) or reply.get("text") != self.text:
                    bad = "post reply"
                elif counted:
                    if reply["id"] in stats.post_ids:
                        bad = "duplicate id"
                    stats.post_ids.add(reply["id"])
            except (orjson.JSONDecodeError, AttributeError):
                bad = "post json"
        else:
            for needle in self.needles:
                if needle not in body:
                    bad = "missing id"
                    break
        if counted:
            if bad:
                stats.error(bad)
            else:
                stats.ok += 1
                stats.lat.append(now - self.sent_at)
                stats.bytes += len(body)
        if b"connection: close" in head:
            stats.error("closed")
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stopping:
            self.stats.error("connection lost")
        self.transport = None
        self.done.set()


def dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """(body, bytes used) of a complete chunked body starting at pos, else None."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n", eol + 2)  # (no trailers expected)
            return (bytes(out), end + 2) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        out += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    clients = []
    events = []
    for i in range(spec["connections"]):
        done = asyncio.Event()
        _, proto = await loop.create_connection(
            lambda i=i, done=done: Client(spec, i, stats, done), HOST, spec["port"]
        )
        clients.append(proto)
        events.append(done)
    await asyncio.sleep(spec["warmup"])
    window = Window(spec.get("server_pid"))
    stats.t0 = time.perf_counter()
    stats.measuring = True
    await asyncio.sleep(spec["duration"])
    elapsed = time.perf_counter() - stats.t0
    stats.measuring = False
    meters = window.finish()
    for c in clients:
        c.stopping = True
    await asyncio.wait([asyncio.create_task(e.wait()) for e in events], timeout=10)
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    lat = sorted(stats.lat)
    return {
        "requests": stats.ok,
        "rps": round(stats.ok / elapsed, 1),
        "lat_p50_ms": round(1000 * percentile(lat, 0.5), 2),
        "lat_p99_ms": round(1000 * percentile(lat, 0.99), 2),
        "lat_max_ms": round(1000 * lat[-1], 2) if lat else 0.0,
        "errors": stats.errors,
        "error_kinds": stats.error_kinds,
        "body_bytes_avg": round(stats.bytes / stats.ok) if stats.ok else 0,
        "posted_ids": len(stats.post_ids),
        "server_cpu_pct": meters["server_cpu_pct"],
        "client_cpu_pct": meters["loadgen_cpu_pct"],
        "client_wait_pct": meters["loadgen_wait_pct"],
        "other_cpu_pct": meters["other_cpu_pct"],
        "server_rss_mb": meters["server_rss_mb"],
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(uvloop.run(run(spec))), flush=True)


if __name__ == "__main__":
    main()
