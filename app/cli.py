"""The ``talkroom`` command: its parser and ``main``, serve and migrate.

The commands for users, rooms and API tokens are in app.cli_admin.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from app.cli_admin import (
    CommandError,
    createbot,
    createroom,
    createuser,
    deleteroom,
    deleteuser,
    editroom,
    invite,
    rooms,
    setadmin,
    token,
    users,
)
from app.cli_search import reindex
from app.settings import Settings, SettingsError

logger = logging.getLogger("talkroom")


def serve(settings: Settings, args: argparse.Namespace) -> None:
    from app.db import upgrade_database

    if args.workers > 1 and not settings.redis_url:
        raise CommandError(
            "--workers > 1 needs TALKROOM_REDIS_URL: the in-process broker cannot "
            "reach other processes, so messages would not cross workers."
        )
    if settings.redis_url:
        check_redis(settings.redis_url)
    upgrade_database(settings)
    with metrics_dir(settings, args.workers):
        run_uvicorn(settings, args)


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise CommandError(f"Redis is not answering at TALKROOM_REDIS_URL: {exc}") from None


@contextlib.contextmanager
def metrics_dir(settings: Settings, workers: int) -> Iterator[None]:
    """Several workers pool their metrics in files (prometheus-client's multiprocess
    mode), which must be chosen before any worker imports the client."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    path, temporary = settings.metrics_dir, None
    if path is None and workers > 1:
        path = temporary = Path(tempfile.mkdtemp(prefix="talkroom-metrics-"))
    if path is None:
        yield
        return
    # Values left by an earlier run would be added in. (Not via app.metrics: importing
    # prometheus-client here, before the variable is set, would fix its mode.)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    os.environ["TALKROOM_METRICS_DIR"] = str(path)
    try:
        yield
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How talkroom is served, whatever the app: bench/pingapp.py serves its bare
    ceiling with the same options."""
    return {
        "ws": "app.fastws.protocol:FrameWritingProtocol",
        "ws_max_size": settings.max_frame_bytes,
        "ws_per_message_deflate": False,
        "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_timeout,
        "proxy_headers": True,
        "timeout_graceful_shutdown": 5,
        "log_level": "info",
    }


def run_uvicorn(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers if not args.reload else None,
        reload=args.reload,
        **uvicorn_options(settings),
    )


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    from app.db import upgrade_database

    upgrade_database(settings)
    print("Database is up to date.")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="talkroom", description="Real-time room chat.")
    commands = root.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="apply migrations, then serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--reload", action="store_true")
    p.set_defaults(func=serve)

    p = commands.add_parser("migrate", help="alembic upgrade head")
    p.set_defaults(func=migrate)

    p = commands.add_parser("createuser", help="create a user")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=createuser)

    p = commands.add_parser("createbot", help="create a bot user; prints its API token once")
    p.add_argument("name")
    p.add_argument("--webhook", metavar="URL", help="POST messages that mention the bot here")
    p.set_defaults(func=createbot)

    p = commands.add_parser("createroom", help="create a room")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.set_defaults(func=createroom)

    p = commands.add_parser("rooms", help="list rooms: id, name, description")
    p.set_defaults(func=rooms)

    p = commands.add_parser("editroom", help="rename or describe a room")
    p.add_argument("id", type=int)
    p.add_argument("--name")
    p.add_argument("--description")
    p.set_defaults(func=editroom)

    p = commands.add_parser("deleteroom", help="delete a room and its messages")
    p.add_argument("id", type=int)
    p.set_defaults(func=deleteroom)

    p = commands.add_parser("users", help="list users: id, name, role")
    p.set_defaults(func=users)

    p = commands.add_parser("setadmin", help="make a user an admin (--off: no longer)")
    p.add_argument("name")
    p.add_argument("--off", action="store_true")
    p.set_defaults(func=setadmin)

    p = commands.add_parser(
        "deleteuser", help="remove a user with their sessions; their messages stay as tombstones"
    )
    p.add_argument("name")
    p.set_defaults(func=deleteuser)

    p = commands.add_parser("invite", help="print a sign-up link (TALKROOM_REGISTRATION=invite)")
    p.add_argument("--uses", type=int, default=1, help="how many accounts it may make (1)")
    p.add_argument("--days", type=float, help="how long it lasts (TALKROOM_INVITE_DAYS, 7)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the open invitations")
    action.add_argument("--revoke", type=int, metavar="ID", help="withdraw one of them")
    p.set_defaults(func=invite)

    p = commands.add_parser("token", help="create an API token for a user (printed once)")
    p.add_argument("name", help="the user the token acts as")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the user's tokens")
    action.add_argument("--revoke", type=int, metavar="ID", help="revoke one of them")
    p.set_defaults(func=token)

    p = commands.add_parser(
        "reindex", help="rebuild the search index (resumes an interrupted run on SQLite)"
    )
    p.add_argument("--batch", type=int, default=5000, help="messages per transaction (SQLite)")
    p.add_argument("--restart", action="store_true", help="start over, not where it stopped")
    p.set_defaults(func=reindex)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic narrates every step at INFO; only `talkroom migrate` wants that.
    logging.getLogger("alembic").setLevel(
        logging.INFO if args.command == "migrate" else logging.WARNING
    )
    try:
        settings = Settings()
        settings.check()
        args.func(settings, args)
    except (CommandError, SettingsError) as exc:
        print(f"talkroom: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # database or Redis unreachable, bad URL, ...
        if not is_expected(exc):
            raise
        print(f"talkroom: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


def is_expected(exc: Exception) -> bool:
    from redis.exceptions import RedisError
    from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

    return isinstance(exc, OSError | OperationalError | DBAPIError | ArgumentError | RedisError)
