"""The one place events leave from: after the commit that caused them, to every worker.

Pub/sub may lose an event, so publishing never fails the change that was already
committed. Each kind of event has its own repair for the loss: a socket that
misses a message repairs the gap from the database (app.connection), presence is
rewritten by every worker's upkeep (app.chat.tend_presence), and a socket whose
session, user or room is gone is found and closed by app.access within seconds.
"""

from __future__ import annotations

import logging

from app import metrics, render
from app.backends import Broker
from app.events import LOBBY, ROOM_LIST, Event, room_channel, user_channel
from app.models import Room

logger = logging.getLogger(__name__)


async def publish(broker: Broker, channel: str, event: Event) -> bool:
    """Send ``event`` on ``channel``; False (logged, counted) if it could not go."""
    try:
        await broker.publish(channel, event.encode())
    except Exception:
        metrics.PUBLISH_FAILURES.labels(event.kind).inc()
        logger.warning("Could not publish a %s event on %s.", event.kind, channel, exc_info=True)
        return False
    return True


async def close_user(broker: Broker, user_id: int, code: int) -> None:
    """Close every socket of the user, on every worker."""
    await publish(broker, LOBBY, Event("close", str(user_id), code))


async def close_session(broker: Broker, tag: str, code: int) -> None:
    """Close the sockets opened with one session (by its auth.session_tag)."""
    await publish(broker, LOBBY, Event("close", f"session:{tag}", code))


async def to_user(broker: Broker, user_id: int, event: Event) -> None:
    """Send ``event`` to every socket of one user (their unread counts, on every tab).

    A lost one is repaired by the page itself: its room list, counts included,
    is fetched again every few seconds."""
    await publish(broker, user_channel(user_id), event)


async def close_member(broker: Broker, room_id: int, user_id: int, code: int) -> None:
    """Close one user's sockets in one room, on every worker (a removed member).

    If it is lost, app.access finds the sockets of non-members within seconds."""
    await publish(broker, room_channel(room_id), Event("close", str(user_id), code))


async def room_gone_for(broker: Broker, room_id: int, user_id: int) -> None:
    """Take the room out of the user's sidebar on every tab they have open."""
    await to_user(broker, user_id, Event("user", render.rooms_changed()))


async def room_created(broker: Broker, room: Room) -> None:
    """A new public room appears in every open page's sidebar; a private one only in
    its creator's (its only member)."""
    if room.kind == "public":
        await publish(broker, LOBBY, Event("state", render.rooms_changed(), ROOM_LIST))
    elif room.created_by is not None:
        await rooms_changed(broker, room.created_by)


async def rooms_changed(broker: Broker, user_id: int) -> None:
    """Ask the user's pages to fetch their room list again (a room they may now read)."""
    await to_user(broker, user_id, Event("user", render.rooms_changed()))
