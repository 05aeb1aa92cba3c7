"""Load generator: real logins, real WebSockets, per-delivery latency.

    python bench/loadgen.py --target talkroom|peer-seed|peer-tuned --port P \
        --connections 100 --rooms 1 --senders 10 --rates 20,40,80 --duration 15 \
        --server-pid PID [--idle 20] [--scenario NAME] [--label TEXT]

Every connection logs in as a real user (bench0..), joins its room and reads
every frame; the first --senders connections also send. Each message text is
"bench r=<run> s=<sender> n=<counter> t=<time_ns>", so a receiver knows which
message it got and how long it took. With several --rates the rate is stepped
on the same connections until p99 > --max-p99-ms or a delivery is lost.
One JSON line per step (or per idle measurement) goes to --results.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import resource
import sqlite3
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import measure
import mixed
import orjson
import uvloop
import webclient
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

BENCH = Path(__file__).resolve().parent
MARKER = re.compile(rb"bench r=(\w+) s=(\d+) n=(\d+) t=(\d+)")
MESSAGE_ID = re.compile(rb'id="message-(\d+)"')
# A message element of a talkroom frame: its id, and the rest up to its end (the text).
ARTICLE = re.compile(rb'id="message-(\d+)"(.*?)</article>', re.S)
TARGETS = ("talkroom", "peer-seed", "peer-tuned")
MAX_RUN_SECONDS = 1800  # a hard stop for every loop in here, whatever the arguments say


def kind_of(target: str) -> str:
    return "peer" if target.startswith("peer") else "talkroom"


def room_names(count: int) -> list[str]:
    return ["bench", *(f"bench-{i}" for i in range(1, count))]


@dataclass
class Step:
    """One measured rate: what was sent, and every first delivery of it."""

    run_id: bytes
    expected: list[int] = field(default_factory=list)  # receivers per message n
    counts: array[int] = field(default_factory=lambda: array("I"))
    kinds: list[str] = field(default_factory=list)  # mixed: "message", "edit" or "react" per n
    latencies_us: list[int] = field(default_factory=list)
    dups: int = 0
    last_ns: int = 0


class Client(WSListener):
    """One WebSocket; parsing stays in the callback, no task per frame."""

    def __init__(self, gen: LoadGen, room: int, jar: int) -> None:
        self.gen = gen
        self.room = room
        self.jar = jar  # index of its user's cookies
        self.sender: int | None = None  # s= of its messages, once it sends
        self.own: list[int] = []  # mixed: ids of its own messages, oldest first
        self.transport: WSTransport | None = None
        self.seen: set[int] = set()
        self.parts: list[bytes] = []
        self.last_id = 0  # seed mode: newest message id this socket has counted
        self.open = False
        self.close_code: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.open = True

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.open = False
        if self.gen.step is not None:
            self.gen.closed_in_step += 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            self.gen.close_codes[self.close_code] += 1
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind != WSMsgType.TEXT and kind != WSMsgType.CONTINUATION:
            return
        data = frame.get_payload_as_bytes()
        if not frame.fin:  # the seed's big frames may come fragmented
            self.parts.append(data)
            return
        if self.parts:
            self.parts.append(data)
            data = b"".join(self.parts)
            self.parts = []
        self.gen.on_text(self, data)


@dataclass
class Options:
    target: str
    port: int
    connections: int
    rooms: int
    senders: int
    users: int
    rates: list[float]
    duration: float
    warmup: float
    drain: float
    max_p99_ms: float
    server_pid: int | None
    idle: float
    page_loads: int
    peer_db: Path | None
    results: Path
    scenario: str
    label: str
    connect_concurrency: int
    connect_rate: float
    cookie_cache: Path | None
    retries: int
    redis_port: int | None
    pg_database: str | None
    edits: float
    reactions: float
    typing: float


class LoadGen:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.kind = kind_of(opts.target)
        self.seed = opts.target == "peer-seed"
        self.clients: list[Client] = []
        self.room_sizes: list[int] = [0] * opts.rooms
        self.step: Step | None = None
        self.closed_in_step = 0
        self.close_codes: Counter[int] = Counter()
        self.frames = 0
        self.bytes_in = 0
        self.last_frame = time.perf_counter()
        self.connect_errors: Counter[str] = Counter()
        self.lag = measure.LoopLag()
        self.window: list[measure.Window | None] = [None]
        self.extra: dict[str, object] = {}
        self.floor_id = 0  # newest message id in the room before the run (seed parsing)
        self.jars: list[webclient.Cookies] = []
        self.room_ids: list[int] = []
        mixing = opts.edits > 0 or opts.reactions > 0
        self.changes = mixed.Changes(opts.edits, opts.reactions) if mixing else None
        self.lanes: dict[int, mixed.Lane] = {}  # sender index -> its HTTP connection
        self.http_errors: Counter[str] = Counter()
        self.rng = random.Random(1)
        self.typing_on = [True]
        self.typing_task: asyncio.Task[None] | None = None

    # -- receiving ---------------------------------------------------------
    def on_text(self, client: Client, data: bytes) -> None:
        now = time.time_ns()
        self.frames += 1
        self.bytes_in += len(data)
        self.last_frame = time.perf_counter()
        step = self.step
        if self.changes is not None:
            self.on_mixed(client, data, step, now)
            return
        if step is None:
            return
        if self.seed:
            data = self.new_part(client, data)
        for m in MARKER.finditer(data):
            if m.group(1) != step.run_id:
                continue  # warm-up or an older run
            n = int(m.group(3))
            if n in client.seen:
                step.dups += 1
                continue
            client.seen.add(n)
            step.counts[n] += 1
            step.latencies_us.append((now - int(m.group(4))) // 1000)
            step.last_ns = now

    def on_mixed(self, client: Client, data: bytes, step: Step | None, now: int) -> None:
        """Count new messages and edits by their marker, reactions by message id."""
        assert self.changes is not None
        for a in ARTICLE.finditer(data):
            message_id = int(a.group(1))
            m = MARKER.search(a.group(2))
            if m is None:
                continue  # a tombstone
            if client.sender == int(m.group(2)) and message_id not in client.own[-5:]:
                client.own.append(message_id)
            if step is None:
                continue
            n = int(m.group(3))
            if m.group(1) == step.run_id and n not in client.seen:
                self.delivered(client, step, n, now - int(m.group(4)))
                continue
            run, n, sent_ns = self.changes.pending.get(message_id, (b"", 0, 0))
            if run == step.run_id and n not in client.seen:
                self.delivered(client, step, n, now - sent_ns)

    def delivered(self, client: Client, step: Step, n: int, latency_ns: int) -> None:
        client.seen.add(n)
        step.counts[n] += 1
        step.latencies_us.append(latency_ns // 1000)
        step.last_ns = time.time_ns()

    def new_part(self, client: Client, data: bytes) -> bytes:
        """Seed frames re-send the whole room: only messages newer than the last counted
        one are new to this socket, found by walking back from the end of the frame."""
        start = len(data)
        top = client.last_id
        for _ in range(100_000):  # bounded: each pass moves one message element left
            pos = data.rfind(b'id="message-', 0, start)
            if pos < 0:
                break
            m = MESSAGE_ID.match(data, pos)
            if m is None or int(m.group(1)) <= client.last_id:
                break
            top = max(top, int(m.group(1)))
            start = pos
        client.last_id = top
        return data[start:]

    # -- setup -------------------------------------------------------------
    def login(self) -> tuple[list[webclient.Cookies], list[int]]:
        users = [f"bench{i}" for i in range(min(self.opts.users, self.opts.connections))]
        cache = self.opts.cookie_cache or Path(
            f"/tmp/talkroom-bench/cookies-{self.kind}-{self.opts.port}.json"
        )
        jars = webclient.login_all(self.kind, self.opts.port, users, cache)
        self.jars = jars
        ids = webclient.room_ids(self.kind, self.opts.port, jars[0])
        missing = [n for n in room_names(self.opts.rooms) if n not in ids]
        if missing:
            raise webclient.SetupError(f"rooms missing on the server: {missing[:5]}")
        self.room_ids = [ids[n] for n in room_names(self.opts.rooms)]
        return jars, self.room_ids

    def page_loads(self, jar: webclient.Cookies, room_id: int) -> None:
        """Open the room as a user would; also learn its newest message id (seed floor)."""
        times: list[float] = []
        newest = 0
        size = 0
        for _ in range(max(1, self.opts.page_loads)):
            reply = webclient.room_page(self.kind, self.opts.port, room_id, jar)
            if reply.status != 200:
                raise webclient.SetupError(f"room page gave {reply.status}")
            times.append(reply.seconds * 1000)
            ids = MESSAGE_ID.findall(reply.body)
            newest = max([newest, *(int(i) for i in ids)])
            size = len(reply.body)
        self.floor_id = newest
        if self.opts.page_loads:
            times.sort()
            self.extra.update(
                page_load_p50_ms=round(measure.percentile(times, 0.5), 1),
                page_load_max_ms=round(times[-1], 1),
                page_bytes=size,
            )

    async def connect_all(self, jars: list[webclient.Cookies], rooms: list[int]) -> None:
        origin = f"http://127.0.0.1:{self.opts.port}"
        sem = asyncio.Semaphore(self.opts.connect_concurrency)

        start = time.perf_counter()

        async def one(i: int) -> Client | None:
            if self.opts.connect_rate > 0:
                # Paced: every join is announced to the whole room, so a storm of
                # joins costs the server O(n^2) notices at once.
                await asyncio.sleep(
                    max(0.0, start + i / self.opts.connect_rate - time.perf_counter())
                )
            room = i % self.opts.rooms
            path = f"/talk/{rooms[room]}/" if self.kind == "peer" else f"/ws/rooms/{rooms[room]}"
            headers = {"Cookie": webclient.cookie_header(jars[i % len(jars)]), "Origin": origin}
            for _attempt in range(3):
                async with sem:
                    try:
                        _, client = await asyncio.wait_for(
                            ws_connect(
                                lambda: Client(self, room, i % len(jars)),
                                f"ws://127.0.0.1:{self.opts.port}{path}",
                                extra_headers=headers,
                                websocket_handshake_timeout=30,
                            ),
                            timeout=40,
                        )
                        assert isinstance(client, Client)
                        return client
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        self.connect_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
            return None

        made = await asyncio.gather(*(one(i) for i in range(self.opts.connections)))
        self.clients = [c for c in made if c is not None]
        self.extra["connect_s"] = round(time.perf_counter() - start, 2)
        await self.settle()
        # A socket the server accepted and then closed (no session, unknown room) is no receiver.
        self.clients = [c for c in self.clients if c.open]
        for c in self.clients:
            self.room_sizes[c.room] += 1
            c.last_id = self.floor_id
        self.extra["connections_open"] = len(self.clients)
        if self.close_codes:  # closed by the server before the first step
            self.extra["closed_while_connecting"] = {str(k): v for k, v in self.close_codes.items()}
        if self.connect_errors:
            self.extra["connect_errors"] = dict(self.connect_errors)

    async def settle(self, quiet: float = 1.0, limit: float = 180.0) -> None:
        """Wait until join notices stop arriving, so they do not pollute the first step."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
            if time.perf_counter() - self.last_frame > quiet:
                return

    def reset_seed_history(self) -> None:
        """Seed frames carry the whole room, so every step starts from an empty room."""
        if self.seed and self.opts.peer_db:
            with sqlite3.connect(self.opts.peer_db, timeout=30) as db:
                db.execute("DELETE FROM chat_message")

    # -- sending -----------------------------------------------------------
    async def send_at(self, rate: float, seconds: float, run_id: str, step: Step | None) -> float:
        """Send rate*seconds messages on a fixed schedule; returns the worst lateness (ms)."""
        senders = self.open_senders()
        if not senders:
            raise RuntimeError("no open sender connection")
        total = int(rate * seconds)
        t0 = time.perf_counter()
        worst = 0.0
        k = 0
        while k < total and time.perf_counter() - t0 < 2 * seconds + 5:
            now = time.perf_counter()
            due = min(total, int((now - t0) * rate) + 1)
            worst = max(worst, now - (t0 + k / rate))
            while k < due:
                j = k % len(senders)
                sender = senders[j]
                if step is not None:
                    step.expected.append(self.room_sizes[sender.room])
                    step.counts.append(0)
                text = f"bench r={run_id} s={j} n={k} t={time.time_ns()}"
                kind, target = "message", 0
                if self.changes is not None:
                    sender.sender = j
                    kind, target = self.changes.choose(self.rng.random(), sender.own)
                if step is not None and self.changes is not None:
                    step.kinds.append(kind)
                if kind != "message":
                    lane = await self.lane(j, sender)
                    room = self.room_ids[sender.room]
                    self.changes.send(lane, kind, room, target, run_id, k, text)  # type: ignore[union-attr]
                elif sender.open and sender.transport is not None:
                    sender.transport.send(WSMsgType.TEXT, orjson.dumps({"message": text}))
                k += 1
            if k < total:
                await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
        return worst * 1000

    def open_senders(self) -> list[Client]:
        return [c for c in self.clients[: max(self.opts.senders, self.opts.rooms)] if c.open]

    async def open_lanes(self) -> None:
        """Every sender's lane before the first step: each costs a page load (its CSRF
        token), which is not the scenario's load and would land in a measured step."""
        senders = self.open_senders()
        for j, sender in enumerate(senders):
            await self.lane(j, sender)

    async def lane(self, j: int, sender: Client) -> mixed.Lane:
        """Sender j's HTTP connection for changes, made (with its CSRF token) on first use."""
        lane = self.lanes.get(j)
        if lane is None:
            jar = self.jars[sender.jar]
            port = self.opts.port
            page = await asyncio.to_thread(webclient.request, port, "GET", "/", cookies=jar)
            token = webclient.TALKROOM_CSRF_FIELD.search(page.body)
            if token is None:
                raise webclient.SetupError(f"GET / gave {page.status} without a csrf_token")
            csrf = token.group(1).decode()
            head = f"Cookie: {webclient.cookie_header(jar)}\r\nX-CSRF-Token: {csrf}\r\n"
            lane = self.lanes[j] = mixed.Lane(port, head, self.http_errors)
        return lane

    async def scrape(self) -> dict[str, float]:
        """talkroom's /metrics counters (empty for the peer, or if /metrics fails)."""
        if self.kind != "talkroom":
            return {}
        try:
            reply = await asyncio.to_thread(webclient.request, self.opts.port, "GET", "/metrics")
        except OSError:
            return {}
        return measure.parse_metrics(reply.body.decode()) if reply.status == 200 else {}

    def new_window(self) -> measure.Window:
        opts = self.opts
        return measure.Window(opts.server_pid, opts.redis_port, opts.pg_database)

    async def run_step(self, index: int, rate: float) -> dict[str, object]:
        self.reset_seed_history()
        if self.opts.warmup > 0:
            await self.send_at(rate, self.opts.warmup, f"w{index}", None)
        run_id = f"m{os.getpid()}x{index}"
        step = Step(run_id.encode())
        for c in self.clients:
            c.seen = set()
        self.step = step
        self.closed_in_step = 0
        if self.changes is not None:
            self.changes.sent.clear()
            self.http_errors.clear()
            for lane in self.lanes.values():
                lane.latencies_ms.clear()
        self.lag.reset()
        metrics_before = await self.scrape()
        window = self.window[0] = self.new_window()
        t0 = time.time_ns()
        send_lag = await self.send_at(rate, self.opts.duration, run_id, step)
        send_s = (time.time_ns() - t0) / 1e9
        expected = sum(step.expected)
        deadline = time.perf_counter() + self.opts.drain
        # Polling, not an Event: the frame callback stays free of per-frame bookkeeping.
        while len(step.latencies_us) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        stats = window.finish()
        self.window[0] = None
        self.step = None
        if metrics_before:
            stats.update(measure.metrics_delta(metrics_before, await self.scrape()))
        lat = sorted(step.latencies_us)
        delivered = len(lat)
        span = max(send_s, (step.last_ns - t0) / 1e9) if delivered else send_s
        p99 = measure.percentile(lat, 0.99) / 1000
        lost = expected - delivered
        return {
            "offered_rate": rate,
            "sent": len(step.expected),
            "msgs_per_s": round(len(step.expected) / send_s, 1),
            "expected": expected,
            "delivered": delivered,
            "deliveries_per_s": round(delivered / span, 1),
            "lat_p50_ms": round(measure.percentile(lat, 0.5) / 1000, 1),
            "lat_p95_ms": round(measure.percentile(lat, 0.95) / 1000, 1),
            "lat_p99_ms": round(p99, 1),
            "lat_max_ms": round(lat[-1] / 1000 if lat else 0.0, 1),
            "lost": lost,
            "dups": step.dups,
            "closed": self.closed_in_step,
            "send_lag_max_ms": round(send_lag, 1),
            **self.mix_summary(step),
            **stats,
            **self.lag.summary(),
            "ok": lost == 0 and p99 <= self.opts.max_p99_ms and delivered > 0,
        }

    def mix_summary(self, step: Step) -> dict[str, object]:
        if self.changes is None:
            return {}
        lost: Counter[str] = Counter()
        for kind, want, got in zip(step.kinds, step.expected, step.counts, strict=True):
            lost[kind] += want - got
        http = sorted(x for lane in self.lanes.values() for x in lane.latencies_ms)
        return {
            "edits": self.changes.sent["edit"],
            "reactions": self.changes.sent["react"],
            "typing_sockets": self.extra.get("typing_sockets", 0),
            "http_p99_ms": round(measure.percentile(http, 0.99), 1) if http else 0.0,
            "http_errors": dict(self.http_errors),
            "lost_by_kind": {kind: n for kind, n in lost.items() if n},
        }

    # -- scenarios ---------------------------------------------------------
    async def main(self) -> int:
        opts = self.opts
        loop_task = asyncio.create_task(self.lag.run(self.window, MAX_RUN_SECONDS))
        try:
            jars, rooms = await asyncio.to_thread(self.login)
            await asyncio.to_thread(self.page_loads, jars[0], rooms[0])
            rss_before = measure.rss_bytes(opts.server_pid)
            await self.connect_all(jars, rooms)
            if not self.clients:
                print("no connection could be opened", file=sys.stderr)
                return 1
            if opts.idle > 0:
                await self.measure_idle(rss_before)
                return 0
            if self.changes is not None:
                await self.open_lanes()
            if opts.typing > 0:
                every = max(1, round(1 / opts.typing))
                typists = self.clients[::every]
                self.extra["typing_sockets"] = len(typists)
                self.typing_task = asyncio.create_task(mixed.keep_typing(typists, self.typing_on))
            index = 0
            for rate in opts.rates:
                # A failing step is tried again (other people's load can spoil one
                # window); the retry is marked and replaces it in the tables.
                for attempt in range(1, opts.retries + 2):
                    record = await self.run_step(index, rate)
                    index += 1
                    record["attempt"] = attempt
                    self.report(record)
                    await asyncio.sleep(1.0)  # let the server drain between steps
                    if record["ok"]:
                        break
                if not record["ok"] and len(opts.rates) > 1:
                    break
            return 0
        finally:
            self.lag.running = False
            self.typing_on[0] = False
            for lane in self.lanes.values():
                lane.close()
            await self.close_all()
            loop_task.cancel()

    async def measure_idle(self, rss_before: int) -> None:
        window = self.window[0] = self.new_window()
        rss_after_connect = measure.rss_bytes(self.opts.server_pid)
        self.lag.reset()
        await asyncio.sleep(self.opts.idle)
        stats = window.finish()
        n = len(self.clients)
        per_conn = (stats["server_rss_mb"] * 2**20 - rss_before) / max(n, 1)
        self.report(
            {
                "idle_s": self.opts.idle,
                "rss_before_mb": round(rss_before / 2**20, 1),
                "rss_after_connect_mb": round(rss_after_connect / 2**20, 1),
                "kb_per_connection": round(per_conn / 1024, 1),
                "idle_cpu_pct": stats["server_cpu_pct"],
                **stats,
                **self.lag.summary(),
                "ok": n == self.opts.connections,
            }
        )

    async def close_all(self) -> None:
        for c in self.clients:
            if c.open and c.transport is not None:
                # 1000: picows' default (no code) reads as a protocol error to websockets
                c.transport.send_close(WSCloseCode.OK)
                c.transport.disconnect()
        await asyncio.sleep(0.2)

    def report(self, record: dict[str, object]) -> None:
        opts = self.opts
        full: dict[str, object] = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "scenario": opts.scenario,
            "target": opts.target,
            "label": opts.label,
            "connections": len(self.clients),
            "rooms": opts.rooms,
            "senders": max(opts.senders, opts.rooms),
            "duration_s": opts.duration,
            "close_codes": {str(k): v for k, v in self.close_codes.items()},
            "nproc": os.cpu_count(),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            **self.extra,
            **record,
        }
        opts.results.parent.mkdir(parents=True, exist_ok=True)
        with opts.results.open("a") as f:
            f.write(json.dumps(full) + "\n")
        print(summary_line(full), flush=True)


def stores_part(r: dict[str, object]) -> str:
    """Per worker, Redis and PostgreSQL CPU, when they were measured."""
    parts = []
    if "server_procs_cpu_pct" in r:
        parts.append(f"procs={r['server_procs_cpu_pct']} waiting={r['server_procs_wait_pct']}%")
        parts.append(f"loadgen waiting={r['loadgen_wait_pct']}%")
    keys = ("redis_cpu_pct", "postgres_cpu_pct", "unrelated_cpu_pct")
    parts += [f"{k.removesuffix('_cpu_pct')}={r[k]}%" for k in keys if k in r]
    if "gap_repairs" in r:
        parts.append(
            f"repairs={r['gap_repairs']} save->send p50/p99<={r['save_to_send_p50_ms_le']}"
            f"/{r['save_to_send_p99_ms_le']} ms"
        )
    return " ".join(parts) + " " if parts else ""


def summary_line(r: dict[str, object]) -> str:
    head = (
        f"[{r['scenario']}] {r['target']} {r['label']} conns={r['connections']} rooms={r['rooms']}"
    )
    if "idle_s" in r:
        return (
            f"{head} idle: rss {r['rss_before_mb']} -> {r['server_rss_mb']} MB "
            f"({r['kb_per_connection']} KB/conn), idle cpu {r['idle_cpu_pct']}%, "
            f"connect {r.get('connect_s')} s, other cpu {r['other_cpu_pct']}%"
        )
    return (
        f"{head} rate={r['offered_rate']}/s sent={r['sent']} deliv/s={r['deliveries_per_s']} "
        f"p50={r['lat_p50_ms']} p95={r['lat_p95_ms']} p99={r['lat_p99_ms']} "
        f"max={r['lat_max_ms']} ms lost={r['lost']} dups={r['dups']} closed={r['closed']} "
        f"| server cpu={r['server_cpu_pct']}% rss={r['server_rss_mb']}MB "
        f"| loadgen cpu={r['loadgen_cpu_pct']}% lag p99/max={r['loop_lag_p99_ms']}/"
        f"{r['loop_lag_max_ms']} ms send-lag={r['send_lag_max_ms']} ms "
        f"| other cpu={r['other_cpu_pct']}% {stores_part(r)}{'OK' if r['ok'] else 'FAIL'}"
        + (f" page={r['page_load_p50_ms']} ms" if "page_load_p50_ms" in r else "")
    )


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--target", choices=TARGETS, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=100, help="WebSockets (receivers)")
    p.add_argument("--rooms", type=int, default=1, help="rooms bench, bench-1, ... (must exist)")
    p.add_argument("--senders", type=int, default=10, help="at least one per room")
    p.add_argument("--users", type=int, default=1000, help="user pool bench0..; sockets share it")
    p.add_argument("--rates", default="20", help="messages/s, comma list: stepped")
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late deliveries")
    p.add_argument("--max-p99-ms", type=float, default=250.0)
    p.add_argument("--server-pid", type=int)
    p.add_argument("--idle", type=float, default=0.0, help="idle mode: hold the sockets N s")
    p.add_argument("--page-loads", type=int, default=0, help="time the room page N times")
    p.add_argument("--peer-db", type=Path, help="peer SQLite file: seed steps start empty")
    p.add_argument("--results", type=Path, default=BENCH / "results.jsonl")
    p.add_argument("--scenario", default="adhoc")
    p.add_argument("--label", default="")
    p.add_argument("--connect-concurrency", type=int, default=20)
    p.add_argument("--connect-rate", type=float, default=0.0, help="connections/s, 0: no pacing")
    p.add_argument("--cookie-cache", type=Path)
    p.add_argument("--retries", type=int, default=1, help="tries again of a failing step")
    p.add_argument("--redis-port", type=int, help="also measure the redis-server on this port")
    p.add_argument("--pg-database", help="also measure the PostgreSQL backends of this database")
    p.add_argument("--edits", type=float, default=0.0, help="mixed: share of sends that edit")
    p.add_argument("--reactions", type=float, default=0.0, help="mixed: share that react")
    p.add_argument("--typing", type=float, default=0.0, help="mixed: share of sockets typing")
    a = p.parse_args(argv)
    rates = [float(x) for x in a.rates.split(",") if x.strip()]
    # Every Options field has the same name as its flag; rates is the only one parsed.
    fields = {k: v for k, v in vars(a).items() if k in Options.__dataclass_fields__}
    return Options(**{**fields, "rates": rates})


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 65536), opts.connections + 1024)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return uvloop.run(LoadGen(opts).main())


if __name__ == "__main__":
    sys.exit(main())
