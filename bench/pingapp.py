"""The ceiling of talkroom's stack: a bare FastAPI app with GET /ping, served by
uvicorn with talkroom's own settings (app/cli.py run_uvicorn: same ws protocol and
options, one worker, proxy headers, info logging). Run with talkroom's venv:

    taskset -c 1 .venv/bin/python bench/pingapp.py --port 8003
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/ping", response_class=PlainTextResponse)
async def ping() -> str:
    return "pong"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8003)
    args = p.parse_args()
    from app.settings import Settings

    settings = Settings()
    uvicorn.run(
        "pingapp:app",
        host="127.0.0.1",
        port=args.port,
        workers=1,
        ws="app.fastws.protocol:FrameWritingProtocol",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        log_level="info",
    )


if __name__ == "__main__":
    main()
