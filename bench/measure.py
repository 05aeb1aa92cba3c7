"""CPU, memory and event-loop lag meters, and percentiles.

The loadgen measures itself as carefully as the server: a saturated loadgen
(CPU near 100 %, loop lag in the tens of ms) makes every server look slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def tree(pid: int) -> list[psutil.Process]:
    """A server and its children: uvicorn --workers N forks, and N workers do the work."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def rss_bytes(pid: int | None) -> int:
    if not pid:
        return 0
    total = 0
    for p in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def redis_procs(port: int) -> list[psutil.Process]:
    """The bench's redis-server (its cmdline ends in 127.0.0.1:PORT)."""
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "redis-server" and f":{port}" in " ".join(p.info["cmdline"] or [])
    ]


def postgres_procs(database: str) -> list[psutil.Process]:
    """PostgreSQL backends serving DATABASE (cmdline `postgres: USER DATABASE HOST ...`)."""
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and f" {database} " in " ".join(p.info["cmdline"] or [])
    ]


def cpu_by_pid(procs: list[psutil.Process]) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def runqueue_wait(pid: int) -> float:
    """Seconds PID spent runnable but waiting for a core (/proc/PID/schedstat): how much
    other processes on the same cores delayed it, whatever its own CPU use."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def waits(procs: list[psutil.Process]) -> dict[int, float]:
    return {p.pid: runqueue_wait(p.pid) for p in procs}


def busy_seconds() -> float:
    """CPU time the whole machine spent busy, summed over cores."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


@dataclass
class Window:
    """CPU use of the server, of this loadgen and of everything else over one window.

    With redis_port / pg_database set, the bench's Redis and PostgreSQL backends are
    measured too, and so is each server process on its own (a worker at 100 % of its
    core, not the sum, is what saturates)."""

    server_pid: int | None
    redis_port: int | None = None
    pg_database: str | None = None
    start_wall: float = 0.0
    start_server: float = 0.0
    start_self: float = 0.0
    start_busy: float = 0.0
    rss_max: int = 0
    start_procs: dict[str, dict[int, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start_wall = time.perf_counter()
        self.start_server = cpu_seconds(tree(self.server_pid)) if self.server_pid else 0.0
        self.start_self = cpu_seconds([psutil.Process(os.getpid())])
        self.start_busy = busy_seconds()
        self.start_procs = self.groups()

    def groups(self) -> dict[str, dict[int, float]]:
        server = tree(self.server_pid) if self.server_pid else []
        out = {
            "server": cpu_by_pid(server),
            "server_wait": waits(server),
            "loadgen_wait": waits([psutil.Process(os.getpid())]),
        }
        if self.redis_port:
            out["redis"] = cpu_by_pid(redis_procs(self.redis_port))
        if self.pg_database:
            out["postgres"] = cpu_by_pid(postgres_procs(self.pg_database))
        return out

    def group_pcts(self, wall: float) -> dict[str, object]:
        """Per group: CPU % (or run-queue wait %) of each process over the window (one
        that started meanwhile counts from 0), summed for Redis and PostgreSQL, listed
        per process for the server (in tree order: the parent first)."""
        out: dict[str, object] = {}
        for name, now in self.groups().items():
            start = self.start_procs.get(name, {})
            pcts = [round(100 * (cpu - start.get(pid, 0.0)) / wall, 1) for pid, cpu in now.items()]
            if name == "server":
                out["server_procs_cpu_pct"] = pcts
            elif name == "server_wait":
                out["server_procs_wait_pct"] = pcts  # same order as server_procs_cpu_pct
            elif name == "loadgen_wait":
                out["loadgen_wait_pct"] = pcts[0] if pcts else 0.0
            else:
                out[f"{name}_cpu_pct"] = round(sum(pcts), 1)
        return out

    def sample_rss(self) -> None:
        self.rss_max = max(self.rss_max, rss_bytes(self.server_pid))

    def finish(self) -> dict[str, Any]:
        wall = max(time.perf_counter() - self.start_wall, 1e-9)
        server = (cpu_seconds(tree(self.server_pid)) - self.start_server) if self.server_pid else 0
        me = cpu_seconds([psutil.Process(os.getpid())]) - self.start_self
        busy = busy_seconds() - self.start_busy
        rss = rss_bytes(self.server_pid)
        self.rss_max = max(self.rss_max, rss)
        groups = self.group_pcts(wall)
        other = max(0.0, 100 * (busy - server - me) / wall)
        stores = sum(v for k, v in groups.items() if k in ("redis_cpu_pct", "postgres_cpu_pct"))
        return {
            "server_cpu_pct": round(100 * server / wall, 1),
            "loadgen_cpu_pct": round(100 * me / wall, 1),
            # Anything else on the machine (other engineers' tests): a noise gauge.
            # It includes the bench's Redis and PostgreSQL, shown apart when measured.
            "other_cpu_pct": round(other, 1),
            **groups,
            **({"unrelated_cpu_pct": round(max(0.0, other - stores), 1)} if stores else {}),
            "server_rss_mb": round(rss / 2**20, 1),
            "server_rss_max_mb": round(self.rss_max / 2**20, 1),
        }


@dataclass
class LoopLag:
    """A 10 ms ticker: how late it wakes up is how late every frame is read."""

    period: float = 0.01
    lags_ms: list[float] = field(default_factory=list)
    running: bool = True

    def reset(self) -> None:
        self.lags_ms = []

    async def run(self, window_of: list[Window | None], max_seconds: float) -> None:
        deadline = time.perf_counter() + max_seconds
        ticks = 0
        while self.running and time.perf_counter() < deadline:
            before = time.perf_counter()
            await asyncio.sleep(self.period)
            self.lags_ms.append((time.perf_counter() - before - self.period) * 1000)
            ticks += 1
            window = window_of[0]
            if window is not None and ticks % 50 == 0:  # RSS every 0.5 s is plenty
                window.sample_rss()

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lags_ms)
        return {
            "loop_lag_p99_ms": round(percentile(lags, 0.99), 2),
            "loop_lag_max_ms": round(lags[-1] if lags else 0.0, 2),
        }


# talkroom's /metrics counters worth a delta per step: repairs from the database
# (a gap in a socket's seqs means pub/sub order or loss forced a catch-up query),
# Redis reconnects, 1013 closes, and commit-to-write time.
METRICS_KEPT = (
    "talkroom_gap_repairs_total",
    "talkroom_redis_reconnects_total",
    "talkroom_slow_clients_closed_total",
    "talkroom_messages_saved_total",
    "talkroom_save_to_send_seconds_bucket",
    "talkroom_save_to_send_seconds_count",
)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} for METRICS_KEPT (summed over workers
    by talkroom itself)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(METRICS_KEPT):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[key] = out.get(key, 0.0) + float(value)
    return out


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, object]:
    """The step's repairs, reconnects and closes, and commit-to-write p50/p99 (bucket
    upper bounds) from the histogram's delta."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), v)
        for k, v in delta.items()
        if k.startswith("talkroom_save_to_send_seconds_bucket")
    )
    total = delta.get("talkroom_save_to_send_seconds_count", 0.0)

    def bound(q: float) -> float:
        return next((le for le, n in buckets if n >= q * total), float("inf")) * 1000

    def count(prefix: str) -> int:
        return int(sum(v for k, v in delta.items() if k.startswith(prefix)))

    return {
        "gap_repairs": count('talkroom_gap_repairs_total{reason="gap"}'),
        "resync_repairs": count('talkroom_gap_repairs_total{reason="resync"}'),
        "redis_reconnects": count("talkroom_redis_reconnects_total"),
        "slow_closed": count("talkroom_slow_clients_closed_total"),
        "saved": count("talkroom_messages_saved_total"),
        "save_to_send_p50_ms_le": bound(0.5) if total else None,
        "save_to_send_p99_ms_le": bound(0.99) if total else None,
    }
