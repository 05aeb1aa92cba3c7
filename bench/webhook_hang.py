"""Side load for a fan-out run: a bot whose webhook hangs, mentioned twice a second
in a room of its own, so the run shows whether a stuck endpoint costs the chat.

    BENCH_TALKROOM=/path/to/wrapper  # a talkroom with TALKROOM_WEBHOOK_ALLOW_PRIVATE=true
    python bench/webhook_hang.py PORT DATA_DIR SECONDS &
    python bench/run.py fanout --targets talkroom --receivers 100 --rates 100 --port PORT ...

It waits for the server at PORT, makes the bot with ``talkroom createbot`` in
DATA_DIR, and holds every POST the bot is sent without answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from pathlib import Path

import httpx

TALKROOM = os.environ.get(
    "BENCH_TALKROOM", str(Path(__file__).resolve().parent.parent / ".venv/bin/talkroom")
)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.CancelledError):  # cancelled when the run ends
        await asyncio.sleep(3600)


async def cli(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(TALKROOM), *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return out.decode()


async def mention(port: int, data_dir: str, seconds: float) -> int:
    hang = await asyncio.start_server(hold, "127.0.0.1", 0)
    hook = f"http://127.0.0.1:{hang.sockets[0].getsockname()[1]}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALKROOM_")}
    env |= {"TALKROOM_DATA_DIR": data_dir, "TALKROOM_WEBHOOK_ALLOW_PRIVATE": "true"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while True:
            try:
                if (await client.get("/healthz", timeout=1)).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
        bot = f"hangbot{os.getpid()}"  # a data directory may be reused between runs
        await cli(env, "createbot", bot, "--webhook", hook)
        made = await cli(env, "createroom", f"side-{os.getpid()}")
        room = int(re.search(r"\(id (\d+)\)", made).group(1))  # type: ignore[union-attr]
        csrf = CSRF_RE.search((await client.get("/register")).text).group(1)  # type: ignore[union-attr]
        form = {
            "username": f"mentioner{os.getpid()}",
            "password": "correct horse battery",
            "csrf_token": csrf,
        }
        await client.post("/register", data=form)
        sent, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            answer = await client.post(
                f"/api/rooms/{room}/messages",
                json={"text": f"@{bot} ping {sent}"},
                headers={"X-CSRF-Token": csrf},
            )
            sent += answer.status_code == 201
            await asyncio.sleep(0.5)
    hang.close()
    return sent


if __name__ == "__main__":
    count = asyncio.run(mention(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
    print(f"mentions sent: {count}")
