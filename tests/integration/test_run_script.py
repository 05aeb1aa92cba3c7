"""The README's run command, with the arguments the README shows it passing on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import ROOT, Server, free_port, server_env


def test_run_script_serves_with_the_given_port(tmp_path: Path) -> None:
    server = Server(free_port(), server_env(tmp_path / "data"), tmp_path / "run.log")
    with server.log.open("ab") as log:
        # scripts/run reuses .venv when it is up to date: this checks the script,
        # not a fresh install (CI's fresh clone does that).
        server.process = subprocess.Popen(
            [str(ROOT / "scripts" / "run"), "--host", "127.0.0.1", "--port", str(server.port)],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        server.wait_ready(timeout=120)
    finally:
        server.stop()
    assert (tmp_path / "data" / "talkroom.db").exists()
