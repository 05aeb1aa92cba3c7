"""The one place events leave from: after the commit that caused them, to every worker.

Pub/sub may lose an event, so publishing never fails the change that was already
committed. Each kind of event has its own repair for the loss: a socket that
misses a message repairs the gap from the database (app.connection), presence is
rewritten by every worker's upkeep (app.chat.tend_presence), and a socket whose
session, user or room is gone is found and closed by app.access within seconds.
"""

from __future__ import annotations

import logging

from app import metrics
from app.backends import Broker
from app.events import LOBBY, Event, user_channel

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
