"""`run.py http`: Campfire's HTTP workloads, 16 keep-alive clients, every response checked.

Workloads (talkroom / the peer's equivalent, where it has one):
  ping      a bare FastAPI GET /ping on talkroom's uvicorn settings: the stack's ceiling
  room      GET /rooms/{id}, the full page             / peer: none (its window is a partial)
  messages  GET /rooms/{id} with HX-Request: true      / peer: GET /chat/group/{id}/
  older     GET /rooms/{id}/messages?before=SEQ        / peer: none (no older page)
  sidebar   GET /, the home page with the room list    / peer: GET /chat/talk/
  post      POST /api/rooms/{id}/messages (cookie + X-CSRF-Token, 201 + id) / peer: none
            (it posts over the WebSocket only)
The room holds --http-history messages (written into the SQLite file while the server
is stopped), so the ids every page must show are known. `post` runs last: it grows
the room. The client (httpload.py) runs pinned to --loadgen-cpu, the servers to
--server-cpu.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import servers
import webclient

BENCH = Path(__file__).resolve().parent
WORKLOADS = ("ping", "room", "messages", "older", "sidebar", "post")
PEER_SKIPS = {
    "room": "no full room page: its chat window is the partial (see messages)",
    "older": "no older-messages page: the window shows the latest 50",
    "post": "no HTTP post: messages are sent over the WebSocket only",
}
WINDOW = 50  # talkroom's history_page and the tuned peer's TUNED_WINDOW


def client(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, Any]:
    spec = {"connections": args.http_connections, "warmup": 1.0, "duration": args.duration} | spec
    path = servers.WORK / f"http-spec-{spec['port']}-{spec['workload']}.json"  # kept to rerun
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    argv = ["taskset", "-c", args.loadgen_cpu, sys.executable, str(BENCH / "httpload.py")]
    done = subprocess.run(
        [*argv, str(path)], capture_output=True, text=True, timeout=spec["duration"] + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"httpload failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def record(args: argparse.Namespace, target: str, workload: str, extra: dict[str, Any]) -> None:
    line = {
        "scenario": "http",
        "target": target,
        "workload": workload,
        "connections": args.http_connections,
        "history": args.http_history,
        "label": args.label,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
    }
    ping_rps = getattr(args, "ping_rps", None)
    if ping_rps and "rps" in line:
        line["of_ping"] = round(line["rps"] / ping_rps, 3)  # issue 17: room >= 0.3, post >= 0.2
    with args.results.open("a") as out:
        out.write(json.dumps(line) + "\n")
    if "skipped" in line:
        print(f"{target:10} {workload:9} skipped: {line['skipped']}", flush=True)
        return
    kinds = f" {line['error_kinds']}" if line["errors"] else ""
    print(
        f"{target:10} {workload:9} {line['rps']:>9,.1f} req/s  p50 {line['lat_p50_ms']:.2f} ms"
        f"  p99 {line['lat_p99_ms']:.2f} ms  errors {line['errors']}{kinds}"
        f"  server {line['server_cpu_pct']} %  client {line['client_cpu_pct']} %"
        f"  other {line['other_cpu_pct']} %"
        + (f"  {line['of_ping']:.3f} of ping" if "of_ping" in line else ""),
        flush=True,
    )


def headers(cookies: webclient.Cookies, *extra: str) -> str:
    return "".join(f"{h}\r\n" for h in [f"Cookie: {webclient.cookie_header(cookies)}", *extra])


def needles(ids: list[int]) -> list[str]:
    return [f'id="message-{i}"' for i in ids]


def wanted(workloads: list[str], name: str) -> bool:
    return name in workloads


# -- the ceiling -------------------------------------------------------------------
def ping(args: argparse.Namespace) -> None:
    env = servers.talkroom_env(servers.fresh_data_dir("http-ping"))
    python = servers.TALKROOM_BIN.parent / "python"
    argv = ["taskset", "-c", args.server_cpu, str(python), str(BENCH / "pingapp.py")]
    proc, log = servers.spawn("pingapp", [*argv, "--port", str(args.ping_port)], env=env, cwd=BENCH)
    server = servers.Server("pingapp", proc, args.ping_port, log)
    try:
        servers.wait_http(proc, args.ping_port, "/ping", log, timeout=60)
        spec = {
            "workload": "ping",
            "port": args.ping_port,
            "server_pid": server.pid,
            "method": "GET",
            "path": "/ping",
            "headers": [""] * args.http_connections,
            "expect_status": 200,
            "needles": ["pong"],
        }
        result = client(args, spec)
        record(args, "fastapi-ping", "ping", result)
        args.ping_rps = result["rps"]
    finally:
        server.stop()


# -- talkroom ------------------------------------------------------------------------
def room_ids_by_seq(db_path: Path, room: str) -> dict[int, int]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT m.seq, m.id FROM messages m JOIN rooms r ON r.id = m.room_id WHERE r.name=?",
            (room,),
        ).fetchall()
    return dict(rows)


def talkroom(args: argparse.Namespace, workloads: list[str]) -> None:
    name = "talkroom-http"
    data = servers.fresh_data_dir(name)
    users = [f"bench{i}" for i in range(args.http_connections)]
    cache = servers.WORK / f"cookies-talkroom-{name}.json"
    cache.unlink(missing_ok=True)
    server = servers.start_talkroom(args.port, data, cpu=args.server_cpu)
    try:
        webclient.login_all("talkroom", server.port, users, cache)
    finally:
        server.stop()
    history = args.http_history
    servers.talkroom_preload(data, history)
    by_seq = room_ids_by_seq(data / "talkroom.db", "bench")
    latest = [by_seq[s] for s in range(max(1, history - WINDOW + 1), history + 1)]
    before = max(1, history - WINDOW + 1)
    older = [by_seq[s] for s in range(max(1, before - WINDOW), before)]
    server = servers.start_talkroom(args.port, data, cpu=args.server_cpu)
    try:
        jars = webclient.login_all("talkroom", server.port, users, cache)
        room = webclient.room_ids("talkroom", server.port, jars[0])["bench"]
        base = {"port": server.port, "server_pid": server.pid, "method": "GET"}
        plain = [headers(j) for j in jars]
        htmx = [headers(j, "HX-Request: true") for j in jars]
        specs = {
            "room": {"path": f"/rooms/{room}", "headers": plain, "needles": needles(latest)},
            "messages": {"path": f"/rooms/{room}", "headers": htmx, "needles": needles(latest)},
            "older": {
                "path": f"/rooms/{room}/messages?before={before}",
                "headers": htmx,
                "needles": needles(older),
            },
            "sidebar": {"path": "/", "headers": plain, "needles": [f'href="/rooms/{room}"']},
        }
        for workload, spec in specs.items():
            if wanted(workloads, workload):
                spec = base | spec | {"workload": workload, "expect_status": 200}
                record(args, "talkroom", workload, client(args, spec))
        if wanted(workloads, "post"):
            posting = []
            for jar in jars:
                page = webclient.request(server.port, "GET", "/", cookies=jar)
                token = webclient.TALKROOM_CSRF_FIELD.search(page.body)
                if token is None:
                    raise RuntimeError("talkroom GET / has no csrf_token field")
                posting.append(headers(jar, f"X-CSRF-Token: {token.group(1).decode()}"))
            spec = base | {
                "workload": "post",
                "method": "POST",
                "path": f"/api/rooms/{room}/messages",
                "headers": posting,
                "expect_status": 201,
            }
            result = client(args, spec)
            # Every 201 is a saved message: the room grew by at least the checked posts.
            result["saved_in_db"] = len(room_ids_by_seq(data / "talkroom.db", "bench")) - history
            record(args, "talkroom", "post", result)
    finally:
        server.stop()


# -- the peer ------------------------------------------------------------------------
def peer(args: argparse.Namespace, target: str, workloads: list[str], users: int) -> None:
    history = args.http_history
    servers.peer_preload(history)
    with sqlite3.connect(servers.PEER_DB) as db:
        latest = [
            r[0]
            for r in db.execute(
                "SELECT m.id FROM chat_message m JOIN chat_room r ON r.id = m.room_id "
                "WHERE r.name='bench' ORDER BY m.id DESC LIMIT ?",
                (WINDOW,),
            )
        ]
    port = args.peer_port
    server = servers.start_peer(target.removeprefix("peer-"), port, users, cpu=args.server_cpu)
    try:
        names = [f"bench{i}" for i in range(args.http_connections)]
        cache = servers.WORK / f"cookies-peer-{port}.json"
        jars = webclient.login_all("peer", port, names, cache)
        room = webclient.room_ids("peer", port, jars[0])["bench"]
        base = {"port": port, "server_pid": server.pid, "method": "GET", "expect_status": 200}
        plain = [headers(j) for j in jars]
        htmx = [headers(j, "HX-Request: true") for j in jars]
        specs = {
            "messages": {
                "path": f"/chat/group/{room}/",
                "headers": htmx,
                "needles": needles(latest),
            },
            "sidebar": {
                "path": "/chat/talk/",
                "headers": plain,
                "needles": [f'data-room-id="{room}"'],
            },
        }
        for workload in workloads:
            if workload in PEER_SKIPS:
                record(args, target, workload, {"skipped": PEER_SKIPS[workload]})
            elif workload in specs:
                spec = base | specs[workload] | {"workload": workload}
                record(args, target, workload, client(args, spec))
    finally:
        server.stop()
        servers.peer_preload(0)


def run(args: argparse.Namespace, targets: list[str], users: int) -> None:
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit(f"unknown workload {w}; choose from {', '.join(WORKLOADS)}")
    if "ping" in workloads and servers.talkroom_available():
        ping(args)
    for target in targets:
        if target == "talkroom":
            talkroom(args, workloads)
        else:
            peer(args, target, workloads, users)
