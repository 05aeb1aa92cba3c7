"""Debian's nginx running deploy/nginx.conf, with only its ports and pid file changed."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from support import ROOT, Server, free_port, in_ci

CONFIG = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        if in_ci():
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


def render_config(directory: Path, port: int, upstreams: list[int]) -> Path:
    text = CONFIG.read_text()

    def swap(marker: str, new: str) -> None:
        nonlocal text
        pattern = rf"^(\s*).*# template: {marker}$"
        assert re.search(pattern, text, re.M), f"no '# template: {marker}' line in nginx.conf"
        text = re.sub(
            pattern,
            lambda m: "\n".join(m.group(1) + line for line in new.split("\n")),
            text,
            flags=re.M,
        )

    swap("pid", f"pid {directory / 'nginx.pid'};")
    swap("upstream", "\n".join(f"server 127.0.0.1:{p};" for p in upstreams))
    swap("listen", f"listen 127.0.0.1:{port};")
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


@contextmanager
def running_nginx(directory: Path, upstreams: list[int]) -> Iterator[Server]:
    """nginx on a free port in front of ``upstreams``; yields a Server to point clients at."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = render_config(directory, port, upstreams)
    log = directory / "nginx.log"
    check = subprocess.run(
        [binary, "-t", "-p", str(directory), "-c", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    with log.open("ab") as out:
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proxy = Server(port, {}, log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{proxy.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield proxy
    finally:
        process.terminate()
        process.wait(timeout=10)
