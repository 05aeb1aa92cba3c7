"""Files no attachment row names any more, removed.

Deleting a message removes its files at once (app.chat). Rows can also go by a
cascade, which no code sees: a deleted room or user takes its messages and their
attachments along. And a process can die between writing a file and committing
its row. So every process now and then removes the files older than an hour (an
upload in progress is younger) that no row names, and old temporary files.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import or_, select

from app.db import Database
from app.files.storage import Storage
from app.models import Attachment

logger = logging.getLogger(__name__)

BATCH = 500  # keys per query (an IN list each)


async def sweep(db: Database, storage: Storage, age: float) -> int:
    """Remove unnamed files older than ``age`` seconds; how many went."""
    keys = await asyncio.to_thread(storage.older_than, age)
    gone: list[str] = []
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        async with db.read() as session:
            rows = await session.execute(
                select(Attachment.id, Attachment.thumbnail).where(
                    or_(Attachment.id.in_(batch), Attachment.thumbnail.in_(batch))
                )
            )
            named = {key for row in rows for key in row if key}
        gone += [key for key in batch if key not in named]
    if gone:
        await storage.delete(*gone)
        logger.info("Removed %s attachment files that no message has any more.", len(gone))
    return len(gone)


async def keep_sweeping(db: Database, storage: Storage, interval: float, age: float) -> None:
    while True:
        try:
            await sweep(db, storage, age)
        except Exception:
            logger.exception("Sweeping the attachment files failed; trying again later.")
        await asyncio.sleep(interval)
