"""Schemathesis against a real server's /openapi.json, for test_schemathesis*.py:
every operation, a stateful run that follows the API's links (create a room, then
read, change, post to and delete it). Every check is on: no 5xx, status codes,
headers and bodies as documented, valid input accepted, invalid input refused,
deleted rooms gone. Three runs in three files, so the test processes take them side
by side (each is a few minutes on a busy 2-core machine); the seed is fixed so CI is
repeatable (set TALKROOM_FUZZ_SEED to explore further)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from support import PASSWORD, Server, postgres_url, running_server

from app.auth import CSRF_COOKIE, SESSION_COOKIE

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SEED = os.environ.get("TALKROOM_FUZZ_SEED", "20261124")
# A run takes 1.5-3 minutes alone and twice that beside the suite's heaviest files
# on 2 busy cores; past pytest's default 300 s a slow run read as a failure.
FUZZ_TIMEOUT_S = 600
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def fuzz(server: Server, cwd: Path, auth: dict[str, dict[str, str]], examples: int = 30) -> str:
    """One schemathesis run with credentials for the schema's security schemes
    (so it knows which requests are authenticated); its report, or a failed test."""
    config = cwd / "schemathesis.toml"
    config.write_text(
        "".join(
            f"[auth.openapi.{scheme}]\n"
            + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
            for scheme, values in auth.items()
        )
    )
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{server.base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(examples),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        # Left out: schemathesis's inferred links feed its answer's attachment id (a
        # string) to the message routes as a message id and call the 422 a rejected
        # valid request. Its bad input is tests/integration/test_attachments.py's.
        "--exclude-operation-id",
        "post_attachments",
    ]
    # Its cache and reports go to a temporary directory, not the work tree.
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S - 40, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-8000:]
    return report


def login(server: Server, username: str) -> dict[str, dict[str, str]]:
    """The session cookie and CSRF token of a browser that logged in."""
    with httpx.Client(base_url=server.base) as browser:
        csrf = CSRF_RE.search(browser.get("/login").text).group(1)  # type: ignore[union-attr]
        response = browser.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf}
        )
        assert response.status_code == 303
        session = browser.cookies[SESSION_COOKIE]
        # The CSRF cookie goes along with the session cookie in a browser.
        csrf_cookie = browser.cookies[CSRF_COOKIE]
    return {
        "sessionCookie": {"api_key": f"{session}; {CSRF_COOKIE}={csrf_cookie}"},
        "csrfHeader": {"api_key": csrf},
    }


@contextmanager
def fuzzed_server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The default rate limit stays on, so 429 answers are part of what is checked.
    # PostgreSQL refuses what SQLite lets by (ids past 32 bits, NUL in text), so the
    # admin run, which reaches every operation, fuzzes both.
    settings = {}
    if database == "postgres":
        settings["database_url"] = postgres_url("talkroom_fuzzed")
    # Its own accounts: boss is the first (the admin), pleb an ordinary user.
    with running_server(tmp_path_factory.mktemp("fuzzed"), first_run=True, **settings) as server:
        server.cli("createuser", "boss", "--admin", "--password-stdin", stdin=PASSWORD)
        server.cli("createuser", "pleb", "--password-stdin", stdin=PASSWORD)
        server.create_room("general", "For the fuzzers")
        yield server


def assert_no_server_errors(server: Server) -> None:
    log = server.log.read_text()
    assert "Traceback" not in log, log[-5000:]
    assert not re.search(r'HTTP/1\.1" 5\d\d', log), log[-5000:]


def fuzz_as_a_plain_user(server: Server, cwd: Path) -> None:
    """Over the cookie and the CSRF header, as a browser's script would."""
    report = fuzz(server, cwd, login(server, "pleb"))
    assert "Stateful" in report
    assert_no_server_errors(server)


def fuzz_as_an_admin(server: Server, cwd: Path) -> None:
    """With a bearer token: every operation is the admin's to reach."""
    token = server.cli("token", "boss").stdout.strip().splitlines()[-1]
    report = fuzz(server, cwd, {"bearerToken": {"bearer": token}})
    # Warnings (operations that only ever met unknown ids) are allowed; failures are not.
    assert re.search(r"(\d+) generated, \1 passed", report), report[-8000:]
    # The stateful phase really followed links from a created room.
    assert re.search(r"API Links:\s+[1-9]\d* covered", report), report[-8000:]
    assert_no_server_errors(server)
