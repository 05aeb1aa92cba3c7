"""Server CPU per message of the save path alone: Chat.post (validate, render the
text, save in the batched writer, render the element, publish), no sockets.

Run with the python of the tree to measure (its app is imported), so two trees
compare in one run:

    .venv/bin/python bench/save_cost.py --senders 10 --messages 5000
    /work/wt-before/.venv/bin/python bench/save_cost.py --senders 10 --messages 5000

The process's CPU time (all threads: aiosqlite's included) over the messages
saved, after a warm-up. Fan-out is not in it: that is bench/run.py fanout.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.backends import create_backends
from app.chat import Chat
from app.db import Database
from app.models import Room, User
from app.settings import Settings

TEXT = "a message of about the usual length, with a few words in it #{n}"


async def measure(settings: Settings, senders: int, messages: int, text: str) -> dict[str, float]:
    db = Database(settings)
    backends = create_backends(settings)
    await backends.broker.connect()
    wanted = inspect.signature(Chat).parameters
    kwargs = {"typing": backends.typing} if "typing" in wanted else {}
    chat = Chat(
        settings=settings,
        db=db,
        broker=backends.broker,
        presence=backends.presence,
        limiter=backends.limiter,
        **kwargs,
    )
    async with db.write() as session:
        room = Room(name="bench")
        authors = [
            User(username=f"s{i}", username_key=f"s{i}", password_hash="x", is_admin=True)
            for i in range(senders)
        ]
        session.add_all([room, *authors])
    async with db.read() as session:
        authors = [await session.get(User, a.id) for a in authors]

    async def send(author: User, count: int, start: int) -> None:
        for n in range(start, start + count):
            await chat.post(room_id=room.id, author=author, text=text.format(n=n))

    async def round_(count: int, start: int) -> None:
        await asyncio.gather(*(send(a, count, start) for a in authors))

    batches = []
    save = chat.writer._save

    async def counted(batch: list) -> None:
        batches.append(len(batch))
        await save(batch)

    chat.writer._save = counted  # type: ignore[method-assign]
    await round_(50, 0)  # warm-up: caches, compiled statements, the pool
    batches.clear()
    per_sender = messages // senders
    cpu, wall = time.process_time(), time.perf_counter()
    await round_(per_sender, 50)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await backends.close()
    await db.close()
    saved = per_sender * senders
    return {
        "messages": saved,
        "cpu_us_per_message": round(cpu / saved * 1e6, 1),
        "wall_us_per_message": round(wall / saved * 1e6, 1),
        "msg_per_cpu_second": round(saved / cpu),
        # Messages per transaction: the writer saves what arrived during the last one.
        "mean_batch": round(sum(batches) / len(batches), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=args.database)
        talkroom = Path(sys.executable).with_name("talkroom")
        env = {"TALKROOM_DATA_DIR": tmp, "PATH": "/usr/bin:/bin"}
        if args.database:
            env["TALKROOM_DATABASE_URL"] = args.database
        subprocess.run([str(talkroom), "migrate"], check=True, env=env, capture_output=True)
        result = asyncio.run(measure(settings, args.senders, args.messages, args.text))
    import app

    print(json.dumps({"tree": str(Path(app.__file__).parent.parent), **vars(args), **result}))


if __name__ == "__main__":
    main()
