"""Server CPU per API request, one at a time on a quiet server: a post, an edit, a
reaction and a page of history, each over a keep-alive connection with a bearer
token (issue 17: what a change over HTTP costs, which bounds the mixed scenario).

    /work/bench-venv/bin/python bench/api_cost.py --requests 200
    BENCH_TALKROOM=/work/wt-before/.venv/bin/talkroom /work/bench-venv/bin/python bench/api_cost.py

The server runs on core 1 (taskset), this client on core 0; the server's CPU time
(all its threads) over the requests, after one warm-up request of each kind.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psutil
import servers

EMOJI = quote("👍")


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    argv = ["taskset", "-c", "1", str(servers.TALKROOM_BIN), *args]
    return subprocess.run(
        argv, env=env, input=stdin, capture_output=True, text=True, check=True
    ).stdout


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> dict | list:
        data = json.dumps(body) if body is not None else None
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        if response.status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
        return json.loads(payload)


def measure(
    server: psutil.Process, requests: int, one: Callable[[int], object]
) -> dict[str, float]:
    one(0)  # warm-up: first-use costs (compiled statements, templates) left out
    cpu0 = sum(server.cpu_times()[:2])
    latencies = []
    for i in range(1, requests + 1):
        started = time.perf_counter()
        one(i)
        latencies.append((time.perf_counter() - started) * 1000)
    cpu_ms = (sum(server.cpu_times()[:2]) - cpu0) / requests * 1000
    latencies.sort()
    return {
        "cpu_ms": round(cpu_ms, 2),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "max_ms": round(latencies[-1], 2),
    }


def run(requests: int, port: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "TALKROOM_DATA_DIR": data, "TALKROOM_MESSAGE_RATE": "100000"}
        env["TALKROOM_MESSAGE_BURST"] = "100000"
        cli(env, "migrate")
        cli(env, "createuser", "prober", "--admin", "--password-stdin", stdin="probe-password-1\n")
        token = cli(env, "token", "prober").strip().splitlines()[-1]
        cli(env, "createroom", "probe")
        room = int(cli(env, "rooms").strip().splitlines()[-1].split()[0])
        argv = ["taskset", "-c", "1", str(servers.TALKROOM_BIN), "serve", "--port", str(port)]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            servers.wait_http(proc, port, "/healthz", Path(data) / "none.log")
            return probe(psutil.Process(proc.pid), Api(port, token), room, requests)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def probe(
    server: psutil.Process, api: Api, room: int, requests: int
) -> dict[str, dict[str, float]]:
    base = f"/api/rooms/{room}/messages"
    ids: list[int] = []

    def post(i: int) -> None:
        ids.append(api.call("POST", base, {"text": f"probe message {i}"})["id"])  # type: ignore[call-overload]

    results = {"post": measure(server, requests, post)}
    results["edit"] = measure(
        server, requests, lambda i: api.call("PATCH", f"{base}/{ids[i]}", {"text": f"edited {i}"})
    )
    results["react"] = measure(
        server, requests, lambda i: api.call("PUT", f"{base}/{ids[i]}/reactions/{EMOJI}")
    )
    results["history"] = measure(server, requests, lambda i: api.call("GET", f"{base}?limit=50"))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--port", type=int, default=8079)
    args = p.parse_args()
    os.sched_setaffinity(0, {0})
    print(json.dumps({"talkroom": str(servers.TALKROOM_BIN), **run(args.requests, args.port)}))


if __name__ == "__main__":
    main()
