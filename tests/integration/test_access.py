"""Sockets lose their right to be open: closed even when the close event is lost.

A logout, a removed user or a deleted room closes sockets through a close event
on every worker. Here the database changes behind the server's back, so no event
is ever sent: only the periodic check (app.access) can close them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Inbox, Server, execute, running_server
from websockets.exceptions import ConnectionClosed

CHECK_EVERY = 0.5


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("access"),
        message_rate="0",
        socket_check_interval=str(CHECK_EVERY),
    ) as srv:
        yield srv


async def closed_with(inbox: Inbox, timeout: float = 10) -> int | None:
    """The close code the server sent, once it closes the socket."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await inbox._next(timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_socket_whose_session_vanished_is_closed_and_the_others_stay(
    checked: Server, make_user, unique: str
) -> None:
    room = checked.create_room(f"gone-session-{unique}")
    alice, bob = await make_user(target=checked), await make_user(target=checked)
    gone = Inbox(await alice.socket(room))
    stays = Inbox(await bob.socket(room))
    await gone.wait_for('id="members"')
    await stays.wait_for('id="members"')
    removed = await execute(
        checked,
        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = :name)",
        name=alice.username,
    )
    assert removed == 1
    assert await closed_with(gone) == 1008
    # Several checks later, the socket whose session is alive still chats.
    await asyncio.sleep(3 * CHECK_EVERY)
    await stays.ws.send(json.dumps({"message": "still here"}))
    await stays.wait_for("still here")
    await stays.ws.close()


async def test_the_sockets_of_a_room_deleted_behind_the_servers_back_are_closed(
    checked: Server, make_user, unique: str
) -> None:
    room, other = (checked.create_room(f"{name}-{unique}") for name in ("doomed", "kept"))
    alice = await make_user(target=checked)
    doomed, kept = Inbox(await alice.socket(room)), Inbox(await alice.socket(other))
    lobby = Inbox(await alice.connect("/ws/lobby"))
    await doomed.wait_for('id="members"')
    await kept.wait_for('id="members"')
    await lobby.wait_for(f'id="online-{room}"')
    assert await execute(checked, "DELETE FROM rooms WHERE id = :id", id=room) == 1
    assert await closed_with(doomed) == 1008
    await asyncio.sleep(3 * CHECK_EVERY)
    await kept.ws.send(json.dumps({"message": "the other room lives"}))
    await kept.wait_for("the other room lives")
    await lobby.ws.ping()  # the lobby is in no room: it stays open
    for inbox in (kept, lobby):
        await inbox.ws.close()


def test_settings_name_the_interval(tmp_path: Path) -> None:
    from app.settings import Settings

    assert Settings(data_dir=tmp_path, socket_check_interval=2).socket_check_interval == 2


async def test_a_socket_whose_membership_vanished_is_closed_by_the_check(
    checked: Server, make_user, unique: str
) -> None:
    owner, friend = await make_user(target=checked), await make_user(target=checked)
    checked.set_admin(owner.username)
    made = await owner.api("POST", "/api/rooms", json={"name": f"gone-{unique}", "kind": "private"})
    room = made.json()["id"]
    friend_id = (await friend.api("GET", "/api/me")).json()["id"]
    await owner.api("PUT", f"/api/rooms/{room}/members/{friend_id}")
    gone = Inbox(await friend.socket(room))
    stays = Inbox(await owner.socket(room))
    await gone.wait_for('id="members"')
    await stays.wait_for('id="members"')
    # Behind the server's back: no close event is ever sent.
    removed = await execute(
        checked, "DELETE FROM room_members WHERE user_id = :user", user=friend_id
    )
    assert removed == 1
    assert await closed_with(gone) == 1008
    await stays.ws.send(json.dumps({"message": "member still here"}))
    await stays.wait_for("member still here")
