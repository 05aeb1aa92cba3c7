"""A multipart/form-data body read as it streams in, its files written straight to
storage and counted against the limit: an upload over it stops at the limit, not
after it was all read, and leaves nothing behind.

Starlette's form parser would spool every file to the system's temporary
directory first, with no limit on its size; this one uses the same parser
(python-multipart) with callbacks of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import ChatError, UploadTooLarge
from app.files.storage import Storage, TooLarge, Upload

FILE_FIELD = "file"
MAX_FIELD = 64 * 1024  # the caption and the client id; a caption is 4,000 characters
MAX_PARTS = 64


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    upload: Upload | None = None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Received:
    files: list[tuple[str, Upload]] = field(default_factory=list)  # (client's name, upload)
    fields: dict[str, str] = field(default_factory=dict)

    def abort(self) -> None:
        for _, upload in self.files:
            upload.abort()


class _Reader:
    def __init__(self, storage: Storage, limit: int, max_files: int) -> None:
        self.storage, self.limit, self.max_files = storage, limit, max_files
        self.received = Received()
        self.part = Part()
        self.parts = 0
        self.used = 0  # file bytes of the parts before this one
        self.ended = False
        self._header = b""
        self._value = b""
        self._disposition = b""

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ChatError(f"An upload has at most {MAX_PARTS} parts.")
        self.part = Part()
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise ChatError("Each part of the form needs a name.")
        self.part.name = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            return
        if self.part.name != FILE_FIELD:
            raise ChatError(f"Files go in the {FILE_FIELD!r} field.")
        if len(self.received.files) >= self.max_files:
            raise ChatError(f"At most {self.max_files} files at once.")
        self.part.filename = filename.decode("utf-8", "replace")
        self.part.upload = self.storage.create(self.limit - self.used)
        self.received.files.append((self.part.filename, self.part.upload))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.upload is not None:
            self.part.upload.write(data[start:end])
            return
        if len(self.part.data) + end - start > MAX_FIELD:
            raise ChatError(f"A form field has at most {MAX_FIELD // 1024} KB.")
        self.part.data += data[start:end]

    def on_part_end(self) -> None:
        if self.part.upload is not None:
            self.used += self.part.upload.size
        else:
            self.received.fields[self.part.name] = self.part.data.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True


async def receive(
    content_type: str,
    chunks: AsyncIterator[bytes],
    *,
    storage: Storage,
    limit: int,
    max_files: int,
) -> Received:
    """The form's fields and its files, written to storage but not committed: the
    caller commits or aborts them. Too large (UploadTooLarge), malformed or cut
    short (ChatError), or the client gone: every file is aborted first."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ChatError("Send the files as multipart/form-data.")
    reader = _Reader(storage, limit, max_files)
    callbacks = {
        name: getattr(reader, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
        if not reader.ended:
            raise ChatError("The upload was cut short: the form has no end.")
    except BaseException as exc:
        reader.received.abort()
        if isinstance(exc, TooLarge):
            raise UploadTooLarge(limit) from None
        if isinstance(exc, FormParserError):
            raise ChatError("The upload is not valid multipart/form-data.") from None
        raise
    if not reader.received.files:
        raise ChatError(f"Add at least one file (the {FILE_FIELD!r} field).")
    return reader.received
