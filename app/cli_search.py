"""``talkroom reindex``: rebuild the search index, with a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from app.cli_admin import with_database
from app.db import Database
from app.settings import Settings

WIDTH = 30  # characters of bar


class ProgressBar:
    """One line, redrawn in place on a terminal; on a pipe or file a line every 10%."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.started = time.monotonic()
        self.tty = out.isatty()
        self._last_tenth = -1

    def __call__(self, done: int, total: int, what: str) -> None:
        share = done / total if total else 1.0
        filled = int(WIDTH * share)
        line = (
            f"reindex [{'#' * filled}{'.' * (WIDTH - filled)}] {share:6.1%}  "
            f"{done:,}/{total:,} {what}  {time.monotonic() - self.started:.1f} s"
        )
        if self.tty:
            self.out.write("\r" + line)
        elif int(share * 10) != self._last_tenth:
            self._last_tenth = int(share * 10)
            self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


def reindex(settings: Settings, args: argparse.Namespace) -> None:
    from app.search.reindex import reindex as rebuild

    async def work(db: Database) -> None:
        bar = ProgressBar()
        try:
            outcome = await rebuild(db, bar, batch=args.batch, restart=args.restart)
        finally:
            bar.close()
        took = time.monotonic() - bar.started
        how = "resumed and finished" if outcome.resumed else "rebuilt"
        print(f"Search index {how}: {outcome.messages:,} messages in {took:.1f} s.")

    with_database(settings, work)
