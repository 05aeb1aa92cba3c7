"""Where attachment files are kept: a small protocol and a filesystem backend.

Like a broker backend (app.backends), the protocol is a handful of methods, so a
backend for another store is a page of code. Names in storage are random ids the
server makes, never a client's file name, so no name can reach outside the
directory or collide. A file appears under its name only once complete: it is
written to a temporary file in the same directory and renamed (atomic on one
filesystem), so a reader on another host of a shared volume never sees half a
file, and a failed upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import BinaryIO, Protocol

from app.settings import Settings

TEMP_PREFIX = ".upload-"
# What put() makes: 22 URL-safe characters (128 random bits). Checked before any
# path is built from a key, so nothing else can name a file.
KEY = re.compile(r"[A-Za-z0-9_-]{22}")


class TooLarge(Exception):
    """More bytes than the upload may have; nothing was kept."""


def new_key() -> str:
    return secrets.token_urlsafe(16)


class Upload(Protocol):
    """A file being written: ``write`` as bytes arrive, then ``commit`` (kept under
    ``key``) or ``abort`` (gone). Both are safe to call more than once."""

    key: str
    size: int

    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Storage(Protocol):
    def create(self, limit: int) -> Upload:
        """A new file of at most ``limit`` bytes (TooLarge beyond), under a new key."""
        ...

    def path(self, key: str) -> Path | None:
        """Where the file can be read, or None for a key that is not one (or gone)."""
        ...

    async def delete(self, *keys: str) -> None:
        """Remove the files; a missing one is not an error."""
        ...

    def older_than(self, age: float) -> list[str]:
        """The keys of files written more than ``age`` seconds ago (blocking: call it
        in a thread), having removed temporary files that old (a crashed upload's)."""
        ...


class FileUpload:
    def __init__(self, directory: Path, limit: int) -> None:
        self.key = new_key()
        self.size = 0
        self._limit = limit
        self._final = directory / self.key
        self._temp = directory / f"{TEMP_PREFIX}{self.key}"
        self._file: BinaryIO | None = self._temp.open("xb")

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("The upload is finished.")
        if self.size + len(data) > self._limit:
            self.abort()
            raise TooLarge()
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())  # on disk before the database says it exists
        self._file.close()
        self._file = None
        self._temp.rename(self._final)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._temp.unlink(missing_ok=True)


class FileStorage:
    """Files in one directory (a local disk, or one volume shared by every host)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def create(self, limit: int) -> FileUpload:
        self.directory.mkdir(parents=True, exist_ok=True)
        return FileUpload(self.directory, limit)

    def path(self, key: str) -> Path | None:
        if not KEY.fullmatch(key):
            return None
        path = self.directory / key
        return path if path.is_file() else None

    async def delete(self, *keys: str) -> None:
        paths = [self.directory / key for key in keys if KEY.fullmatch(key)]
        if paths:
            await asyncio.to_thread(_unlink, paths)

    def older_than(self, age: float) -> list[str]:
        if not self.directory.is_dir():
            return []
        before = time.time() - age
        keys: list[str] = []
        for entry in os.scandir(self.directory):
            try:
                old = entry.stat().st_mtime < before
            except FileNotFoundError:
                continue  # deleted meanwhile
            if not old:
                continue
            if entry.name.startswith(TEMP_PREFIX):
                Path(entry.path).unlink(missing_ok=True)
            elif KEY.fullmatch(entry.name):
                keys.append(entry.name)
        return keys


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def create_storage(settings: Settings) -> Storage:
    """The backend the settings choose (one, for now: a directory)."""
    return FileStorage(settings.uploads)
