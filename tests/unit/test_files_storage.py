"""The filesystem storage backend: random names, atomic writes, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.files.storage import KEY, FileStorage, TooLarge


async def test_a_committed_upload_appears_whole_under_a_random_key(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "uploads")
    upload = storage.create(limit=10)
    upload.write(b"hello")
    assert list(storage.directory.iterdir())[0].name.startswith(".upload-")
    assert storage.path(upload.key) is None  # not there until complete
    upload.commit()
    assert KEY.fullmatch(upload.key)
    path = storage.path(upload.key)
    assert path is not None and path.read_bytes() == b"hello"
    assert [p.name for p in storage.directory.iterdir()] == [upload.key]
    await storage.delete(upload.key, upload.key)  # twice: no error
    assert list(storage.directory.iterdir()) == []


def test_too_large_or_aborted_uploads_leave_no_file(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    upload = storage.create(limit=4)
    upload.write(b"1234")
    with pytest.raises(TooLarge):
        upload.write(b"5")
    other = storage.create(limit=4)
    other.write(b"12")
    other.abort()
    other.abort()
    assert list(tmp_path.iterdir()) == []


def test_only_keys_it_makes_name_a_path(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    (tmp_path / "secret").write_text("x")
    for key in ("../secret", "secret", "/etc/passwd", "a" * 21 + "/", ""):
        assert storage.path(key) is None
