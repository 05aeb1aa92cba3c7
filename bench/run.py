"""One command per scenario: start the server, run the pinned loadgen, stop the server.

    python bench/run.py fanout  --targets peer-seed,peer-tuned,talkroom --receivers 100
    python bench/run.py rooms   --targets peer-tuned,talkroom --connections 1000 --rooms 100
    python bench/run.py mixed   --targets talkroom --connections 1000 --rooms 100
    python bench/run.py idle    --targets peer-tuned,talkroom --connections 5000 --rooms 100
    python bench/run.py history --targets peer-tuned,talkroom --history 0,10000,100000
    python bench/run.py workers --workers 1,2 --receivers 100
    python bench/run.py http    --targets talkroom,peer-tuned

Servers run on core 1 (taskset -c 1), the loadgen on core 0. Results are appended
to bench/results.jsonl, one JSON line per measured step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import http_scenario
import servers
import webclient
from loadgen import TARGETS, kind_of

BENCH = Path(__file__).resolve().parent
PEER_USERS = 1100  # run.sh creates bench0..bench1099
PEER_PORT = 8001
TALKROOM_PORT = 8002
# Stepped rates (messages/s) per target: each ladder starts below the expected knee
# and is fine enough near it; with ~1000 receivers every message costs 10x more.
LADDERS = {
    "peer-seed": "2,5,10,12,15,18,20,30",
    "peer-tuned": "10,20,30,40,50,60,70,80,100",
    "talkroom": "20,100,200,300,400,500,600,700,800,900,1000,1200,1400,1600,2000",
}
# Many rooms: ~10 sockets a room, so each message costs a tenth of a 100-socket room's.
LADDERS_ROOMS = {
    "peer-seed": "10,20,40,60,80,100,150",
    "peer-tuned": "50,100,200,300,400,500,600,800",
    "talkroom": "100,200,400,800,1200,1600,2000,2400,3200,4000",
}
LADDERS_1000 = {
    "peer-seed": "0.5,1,1.5,2,3,5",
    "peer-tuned": "1,2,3,4,5,6,8,10",
    "talkroom": "2,5,10,20,30,40,50,60,70,80,100,120,160",
}


def flags(**options: object) -> list[str]:
    """flags(page_loads=5) -> ["--page-loads", "5"]; None and "" are left out."""
    out: list[str] = []
    for name, value in options.items():
        if value is not None and value != "":
            out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def loadgen(args: argparse.Namespace, target: str, port: int, pid: int, *extra: str) -> int:
    """The loadgen in its own process, pinned to core 0."""
    argv = [
        "taskset",
        "-c",
        args.loadgen_cpu,
        sys.executable,
        str(BENCH / "loadgen.py"),
        "--target",
        target,
        "--port",
        str(port),
        "--server-pid",
        str(pid),
        "--results",
        str(args.results),
        "--duration",
        str(args.duration),
        "--retries",
        str(args.retries),
        "--redis-port",
        str(servers.REDIS_PORT),
        *extra,
    ]
    if args.database == "postgres":
        argv += ["--pg-database", servers.PG_DATABASE]
    if kind_of(target) == "talkroom":
        argv += ["--cookie-cache", str(servers.WORK / f"cookies-talkroom-{args.data_name}.json")]
    print("+", " ".join(argv[3:]), flush=True)
    # Bounded: the loadgen stops itself, and this is the backstop.
    return subprocess.run(argv, timeout=args.timeout).returncode


def with_server(
    args: argparse.Namespace,
    target: str,
    work: Callable[[servers.Server], None],
    *,
    rooms: int = 1,
    workers: int = 1,
    fresh: bool = False,
    redis: bool = False,
) -> None:
    """Start the target's server, prepare its rooms, run `work`, always stop it."""
    if kind_of(target) == "peer":
        servers.peer_rooms(rooms)
        server = servers.start_peer(
            target.removeprefix("peer-"), PEER_PORT, PEER_USERS, cpu=args.server_cpu
        )
    else:
        data = servers.WORK / args.data_name
        if fresh or not data.exists():
            data = servers.fresh_data_dir(args.data_name)
        cpu = args.server_cpu if workers == 1 else args.workers_cpu
        url = f"{servers.REDIS_URL}/1" if redis else None
        database = servers.fresh_postgres() if args.database == "postgres" else None
        server = servers.start_talkroom(
            args.port, data, workers=workers, cpu=cpu, redis_url=url, database_url=database
        )
    try:
        if kind_of(target) == "talkroom":
            servers.talkroom_rooms(server, rooms)
        print(f"started {server.name} pid {server.pid} (log {server.log})", flush=True)
        work(server)
    finally:
        server.stop()


def check_targets(args: argparse.Namespace) -> list[str]:
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            sys.exit(f"unknown target {t}; choose from {', '.join(TARGETS)}")
    if "talkroom" in targets and not servers.talkroom_available():
        print(f"skipping talkroom: {servers.TALKROOM_BIN} does not exist", flush=True)
        targets.remove("talkroom")
    return targets


def fanout(args: argparse.Namespace) -> None:
    for target in check_targets(args):
        if kind_of(target) == "peer":
            servers.peer_preload(0)
        if args.scenario in ("rooms", "mixed"):
            ladder = LADDERS_ROOMS
        else:
            ladder = LADDERS_1000 if args.receivers >= 500 else LADDERS
        rates = args.rates or ladder[target]

        def work(server: servers.Server, target: str = target, rates: str = rates) -> None:
            extra = flags(
                scenario=args.scenario,
                connections=args.receivers,
                rooms=args.rooms,
                senders=args.senders,
                rates=rates,
                label=args.label,
                connect_concurrency=20,
                connect_rate=args.connect_rate,
            )
            if args.scenario == "mixed":
                # Issue 12's mix: 10% edits, 10% reactions, 10% of the sockets typing;
                # a step holds only with p99 <= 50 ms.
                extra += flags(edits=0.1, reactions=0.1, typing=0.1, max_p99_ms=50)
            if target == "peer-seed":
                extra += ["--peer-db", str(servers.PEER_DB)]
            loadgen(args, target, server.port, server.pid, *extra)

        with_server(args, target, work, rooms=args.rooms)


def idle(args: argparse.Namespace) -> None:
    for target in check_targets(args):

        def work(server: servers.Server, target: str = target) -> None:
            # 50 sockets a room: each join is announced to few, so connect faster
            extra = flags(
                scenario="idle",
                connections=args.connections,
                rooms=args.rooms,
                idle=args.idle,
                connect_concurrency=50,
                label=args.label,
                connect_rate=args.connect_rate,
            )
            loadgen(args, target, server.port, server.pid, *extra)

        with_server(args, target, work, rooms=args.rooms)


def history(args: argparse.Namespace) -> None:
    if args.database != "sqlite":
        sys.exit("history preloads talkroom's SQLite file: --database sqlite only")
    sizes = [int(h) for h in args.history.split(",")]
    args.data_name = "talkroom-history"
    for target in check_targets(args):
        if target == "talkroom":
            # Users first (the preload needs authors), then stop: the preload writes the file.
            def login(server: servers.Server) -> None:
                users = [f"bench{i}" for i in range(min(args.receivers, 1000))]
                cache = servers.WORK / f"cookies-talkroom-{args.data_name}.json"
                webclient.login_all("talkroom", server.port, users, cache)

            with_server(args, target, login, fresh=True)
        for size in sizes:
            if target == "peer-seed" and size > args.seed_max_history:
                print(
                    f"skip peer-seed at {size}: it re-sends the whole room per message", flush=True
                )
                continue
            if target == "talkroom":
                servers.talkroom_preload(servers.WORK / args.data_name, size)
            else:
                servers.peer_preload(size)

            def work(server: servers.Server, target: str = target, size: int = size) -> None:
                extra = flags(
                    scenario="history",
                    connections=args.receivers,
                    senders=args.senders,
                    rates=args.rate,
                    page_loads=args.page_loads,
                    # The history size is in the label; --label, if given, follows it.
                    label=" ".join(filter(None, [f"history={size}", args.label])),
                    connect_rate=args.connect_rate,
                )
                loadgen(args, target, server.port, server.pid, *extra)

            with_server(args, target, work)
        if kind_of(target) == "peer":
            servers.peer_preload(0)


def workers_label(args: argparse.Namespace, count: int) -> str:
    """workers=2 (SQLite, as before), workers=2 pg cpu=0,1 ...: the label tells runs apart."""
    cpu = args.server_cpu if count == 1 else args.workers_cpu
    parts = [f"workers={count}"]
    if args.database != "sqlite":
        parts.append("pg")
    if cpu != ("1" if count == 1 else "0,1"):
        parts.append(f"cpu={cpu}")
    return " ".join([*parts, args.label]).strip()


def workers(args: argparse.Namespace) -> None:
    if not servers.talkroom_available():
        sys.exit(f"{servers.TALKROOM_BIN} does not exist")
    for count in [int(w) for w in args.workers.split(",")]:
        rates = args.rates or LADDERS["talkroom"]

        def work(server: servers.Server, count: int = count, rates: str = rates) -> None:
            extra = flags(
                scenario="workers",
                connections=args.receivers,
                senders=args.senders,
                rates=rates,
                label=workers_label(args, count),
                connect_rate=args.connect_rate,
            )
            loadgen(args, "talkroom", server.port, server.pid, *extra)

        with_server(args, "talkroom", work, workers=count, redis=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    scenarios = ["fanout", "rooms", "mixed", "idle", "history", "workers", "http"]
    p.add_argument("scenario", choices=scenarios)
    p.add_argument("--targets", "--target", default="peer-seed,peer-tuned,talkroom")
    p.add_argument("--receivers", type=int, default=100)
    p.add_argument("--connections", type=int, default=0, help="rooms/idle: total sockets")
    p.add_argument("--rooms", type=int, default=0)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rates", default="", help="stepped messages/s (default: per-target ladder)")
    p.add_argument("--rate", type=float, default=5.0, help="history: the one rate")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per step")
    p.add_argument("--idle", type=float, default=20.0)
    p.add_argument("--history", default="0,10000,100000")
    p.add_argument("--seed-max-history", type=int, default=1000)
    # 5 loads' median swung by ±5 ms on a shared machine; 30 cost under a second.
    p.add_argument("--page-loads", type=int, default=30)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--label", default="")
    p.add_argument("--workloads", default=",".join(http_scenario.WORKLOADS), help="http")
    p.add_argument("--http-connections", type=int, default=16, help="http: keep-alive clients")
    p.add_argument("--http-history", type=int, default=200, help="http: messages in the room")
    p.add_argument("--ping-port", type=int, default=8003, help="http: the bare /ping app's")
    p.add_argument("--peer-port", type=int, default=PEER_PORT, help="http: the peer's")
    p.add_argument("--retries", type=int, default=1, help="tries again of a failing step")
    p.add_argument(
        "--connect-rate",
        type=float,
        default=None,
        help="new sockets/s (joins are announced to the room: storms cost O(n^2)); "
        "default 40, idle 100",
    )
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--port", type=int, default=TALKROOM_PORT, help="talkroom's port")
    p.add_argument("--server-cpu", default="1", help="cores of a one-worker server")
    p.add_argument("--workers-cpu", default="0,1", help="cores of a several-worker server")
    p.add_argument("--loadgen-cpu", default="0")
    p.add_argument("--timeout", type=float, default=900.0, help="backstop per loadgen run")
    p.add_argument("--results", type=Path, default=BENCH / "results.jsonl")
    p.add_argument("--data-name", default="talkroom-data")
    args = p.parse_args()
    if args.connect_rate is None:
        args.connect_rate = 100.0 if args.scenario == "idle" else 40.0
    if args.scenario == "mixed" and args.targets != "talkroom":
        sys.exit("mixed edits and reacts over talkroom's API: --targets talkroom")
    if args.scenario in ("rooms", "mixed"):
        args.receivers = args.connections or 1000
        args.rooms = args.rooms or 100
        args.senders = max(args.senders, args.rooms)
    elif args.scenario == "idle":
        args.connections = args.connections or 5000
        args.rooms = args.rooms or 100
    else:
        args.rooms = args.rooms or 1
    servers.raise_nofile()
    if any(t.startswith("peer") for t in args.targets.split(",")):
        servers.peer_setup(PEER_USERS)
    redis = servers.start_redis()
    try:
        if args.scenario == "http":
            http_scenario.run(args, check_targets(args), PEER_USERS)
        else:
            scenarios = {"fanout": fanout, "rooms": fanout, "mixed": fanout, "idle": idle}
            scenarios["history"] = history
            {**scenarios, "workers": workers}[args.scenario](args)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)


if __name__ == "__main__":
    main()
