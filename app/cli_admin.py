"""The ``talkroom`` commands that administer accounts and rooms: users, rooms and
API tokens, each run against the database (migrated first) and then closed.

Apart from app.cli, which keeps the parser, ``main`` and serving, so that each
module stays short and about one thing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from app.backends import Broker
from app.db import Database
from app.settings import Settings


# Defined here rather than in app.cli: app.cli imports this module for its
# parser, so importing back from it would close an import circle.
class CommandError(Exception):
    """An expected problem: printed to stderr without a traceback."""


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Password (again): "):
        raise CommandError("The passwords do not match.")
    return password


def createuser(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth import AuthError, Passwords, create_user

    password = read_password(args)

    async def create(db: Database) -> None:
        try:
            user = await create_user(
                db,
                Passwords.of(settings, 1),
                username=args.name,
                password=password,
                is_admin=args.admin,
            )
        except AuthError as exc:
            raise CommandError(str(exc)) from None
        print(f"Created {'admin' if user.is_admin else 'user'} {user.username} (id {user.id}).")

    with_database(settings, create)


def createroom(settings: Settings, args: argparse.Namespace) -> None:
    from app.errors import ChatError
    from app.rooms import create_room

    async def create(db: Database) -> None:
        try:
            room = await create_room(db, name=args.name, description=args.description)
        except ChatError as exc:
            raise CommandError(str(exc)) from None
        print(f"Created room {room.name} (id {room.id}).")

    with_database(settings, create)


def rooms(settings: Settings, args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from app.models import Room

    async def show(db: Database) -> None:
        async with db.read() as session:
            for room in await session.scalars(select(Room).order_by(Room.name)):
                print(f"{room.id}\t{room.name}\t{room.description}")

    with_database(settings, show)


def editroom(settings: Settings, args: argparse.Namespace) -> None:
    from app.errors import ChatError
    from app.rooms import update_room

    if args.name is None and args.description is None:
        raise CommandError("Give --name and/or --description.")

    async def edit(db: Database) -> None:
        try:
            room = await update_room(db, args.id, name=args.name, description=args.description)
        except ChatError as exc:
            raise CommandError(str(exc)) from None
        print(f"Saved room {room.name} (id {room.id}).")

    with_database(settings, edit)


def deleteroom(settings: Settings, args: argparse.Namespace) -> None:
    from app.errors import ChatError
    from app.rooms import delete_room

    async def delete(db: Database) -> None:
        # With Redis, the serving workers hear of it and close the room's sockets.
        async with connected_broker(settings) as broker:
            try:
                await delete_room(db, broker, args.id)
            except ChatError as exc:
                raise CommandError(str(exc)) from None
        print(f"Deleted room {args.id} and its messages.")

    with_database(settings, delete)


def users(settings: Settings, args: argparse.Namespace) -> None:
    from app.users import list_users

    async def show(db: Database) -> None:
        for user in await list_users(db):
            role = "bot" if user.is_bot else "admin" if user.is_admin else "user"
            print(f"{user.id}\t{user.username}\t{role}")

    with_database(settings, show)


def setadmin(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth import AuthError
    from app.users import find_user, set_admin

    async def change(db: Database) -> None:
        try:
            user = await set_admin(db, (await find_user(db, args.name)).id, not args.off)
        except AuthError as exc:
            raise CommandError(str(exc)) from None
        print(f"{user.username} is {'now' if user.is_admin else 'no longer'} an admin.")

    with_database(settings, change)


def deleteuser(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth import AuthError
    from app.files.storage import create_storage
    from app.users import delete_user, find_user

    async def delete(db: Database) -> None:
        async with connected_broker(settings) as broker:
            try:
                user = await find_user(db, args.name)
                await delete_user(db, broker, create_storage(settings), user.id)
            except AuthError as exc:
                raise CommandError(str(exc)) from None
        print(f"Removed user {args.name} with their sessions and tokens; messages deleted.")

    with_database(settings, delete)


def token(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth import AuthError
    from app.tokens import create_token, list_tokens, revoke_token, when
    from app.users import find_user

    async def work(db: Database) -> None:
        try:
            user = await find_user(db, args.name)
            if args.list:
                for row in await list_tokens(db, user):
                    print(
                        f"{row.id}\t{row.prefix}…\tcreated {when(row.created_at)}"
                        f"\tlast used {when(row.last_used)}"
                    )
            elif args.revoke is not None:
                await revoke_token(db, user, args.revoke)
                print(f"Revoked token {args.revoke} of {user.username}.")
            else:
                row, secret = await create_token(db, user)
                print(f"Token {row.id} for {user.username}; it is shown only this once:")
                print(secret)
        except AuthError as exc:
            raise CommandError(str(exc)) from None

    with_database(settings, work)


def createbot(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth import AuthError
    from app.bots import create_bot
    from app.errors import ChatError

    async def create(db: Database) -> None:
        try:
            bot, token, secret = await create_bot(db, name=args.name, webhook=args.webhook)
        except (AuthError, ChatError) as exc:
            raise CommandError(str(exc)) from None
        print(f"Created bot {bot.username} (id {bot.id}); its API token is shown only this once:")
        print(token)
        if secret:
            print(f"Webhook {bot.webhook_url} is signed with this secret (shown once):")
            print(secret)

    with_database(settings, create)


@contextlib.asynccontextmanager
async def connected_broker(settings: Settings) -> AsyncIterator[Broker]:
    from app.backends import create_backends

    backends = create_backends(settings)
    await backends.broker.connect()
    try:
        yield backends.broker
    finally:
        await backends.close()


def with_database(settings: Settings, work: Callable[[Database], Awaitable[None]]) -> None:
    """Migrate, then run ``work`` with a database that is closed afterwards."""
    from app.db import upgrade_database

    async def run() -> None:
        db = Database(settings)
        try:
            await work(db)
        finally:
            await db.close()

    upgrade_database(settings)
    asyncio.run(run())


def invite(settings: Settings, args: argparse.Namespace) -> None:
    """Print a sign-up link (shown once); --list the open ones, --revoke one."""
    from app import invitations
    from app.auth import AuthError
    from app.tokens import when

    async def work(db: Database) -> None:
        try:
            if args.list:
                for row in await invitations.list_open(db):
                    print(
                        f"{row.id}\tused {row.used} of {row.uses}\texpires {when(row.expires_at)}"
                    )
            elif args.revoke is not None:
                if not await invitations.revoke(db, args.revoke):
                    raise CommandError(f"There is no open invitation {args.revoke}.")
                print(f"Revoked invitation {args.revoke}.")
            else:
                days = settings.invite_days if args.days is None else args.days
                row, token = await invitations.make(db, by=None, uses=args.uses, days=days)
                uses = "once" if row.uses == 1 else f"{row.uses} times"
                print(
                    f"Invitation {row.id}: signs up {uses}, until {when(row.expires_at)}; "
                    "the link is shown only this once:"
                )
                print(invitations.link(settings.site_url, token))
        except AuthError as exc:
            raise CommandError(str(exc)) from None

    if settings.registration != "invite":
        print(
            "Note: TALKROOM_REGISTRATION is open, so anyone can sign up without a link.",
            file=sys.stderr,
        )
    with_database(settings, work)
