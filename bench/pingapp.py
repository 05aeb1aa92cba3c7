"""The ceiling of talkroom's stack: a bare FastAPI app with GET /ping, served by
uvicorn with talkroom's own options (app.cli.uvicorn_options), one worker. Run with talkroom's venv:

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
    from app.cli import uvicorn_options
    from app.settings import Settings

    settings = Settings()
    uvicorn.run(
        "pingapp:app", host="127.0.0.1", port=args.port, workers=1, **uvicorn_options(settings)
    )


if __name__ == "__main__":
    main()
