"""The API's bodies and the responses each operation documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app import faces, render
from app.auth import USERNAME_RE
from app.files import attachments as files
from app.models import MAX_DISPLAY_NAME, Message, Room, User
from app.reactions import MAX_NAMED, Reactions
from app.render import MessageView
from app.rooms import CONTROL_CHARS, MAX_DIRECT
from app.unread import CAP, NONE, Counts
from app.web.deps import NO_SUCH_ROOM
from app.web.limits import MAX_CLIENT_ID, MAX_DESCRIPTION, MAX_ROOM_NAME, MAX_TEXT

# Python's re, so the server reads a pattern exactly as the docs (and test
# generators written in Python) do.
STRICT = ConfigDict(regex_engine="python-re")
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*\S[^\x00]*$"
ROOM_NAME = rf"^[^{CONTROL_CHARS}]*[^\s{CONTROL_CHARS}][^{CONTROL_CHARS}]*$"


# Errors ---------------------------------------------------------------------


class Problem(BaseModel):
    detail: str = Field(examples=[NO_SUCH_ROOM])


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "name"]])
    msg: str = Field(examples=["String should have at least 1 character"])
    type: str = Field(examples=["string_too_short"])


class ValidationProblem(BaseModel):
    detail: str | list[FieldProblem] = Field(
        description="What is wrong: a sentence, or one entry per invalid field.",
        examples=["The message is empty."],
    )


Responses = dict[int | str, dict[str, Any]]


def problem(description: str, model: type[BaseModel] = Problem, **extra: Any) -> dict[str, Any]:
    return {"model": model, "description": description, **extra}


UNAUTHENTICATED: Responses = {
    401: problem(
        "No session cookie or API token, or one that expired or was revoked.",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    )
}
INVALID: Responses = {
    422: problem("The request is not valid; `detail` says why.", ValidationProblem)
}
READ: Responses = {**UNAUTHENTICATED, **INVALID}
# Unsafe methods with the cookie need the CSRF header: a 403 even for a user allowed to write.
WRITE: Responses = {**READ, 403: problem("The CSRF header is missing or wrong.")}
ADMIN_WRITE: Responses = {
    **READ,
    403: problem("Not an admin, or the CSRF header is missing or wrong."),
}
NOT_FOUND: Responses = {404: problem("There is no room with that id.")}
USER_NOT_FOUND: Responses = {404: problem("There is no user with that id.")}
NAME_TAKEN: Responses = {409: problem("Another room has that name.")}
NOT_PRIVATE: Responses = {409: problem("The room is not private: it has no members to change.")}
DIRECT_CONFLICT: Responses = {
    409: problem("The names repeat someone (case does not matter), or name only the caller.")
}
SELF_LOCKOUT: Responses = {409: problem("An admin cannot demote or remove themselves.")}
CHANGE: Responses = {
    **READ,
    403: problem(
        "Not the message's author (nor an admin), or the CSRF header is missing or wrong."
    ),
    404: problem("There is no room with that id, or no message with that id in it."),
}
DELETED: Responses = {409: problem("The message was deleted: it cannot be edited.")}
REACT: Responses = {
    **READ,
    403: problem("The CSRF header is missing or wrong."),
    404: problem("There is no room with that id, or no message with that id in it."),
    409: problem("The message was deleted: it takes no reactions."),
}
TOO_FAST: Responses = {
    429: problem(
        "Over the per-user message rate limit, which edits and deletes share (admins are exempt).",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    )
}


# Accounts -------------------------------------------------------------------


DISPLAY_NAME = Field(
    None,
    description="Shown beside the username (set on the account page); null: none.",
    examples=["Alice Liddell"],
)
AVATAR_URL = Field(
    None,
    description="The avatar's image (for logged-in callers); null: the page shows initials.",
    examples=["/avatars/1?v=3f2a9c0d1e4b5a67"],
)


class Me(BaseModel):
    id: int = Field(examples=[1])
    username: str = Field(examples=["alice"])
    is_admin: bool = Field(examples=[False])
    display_name: str | None = DISPLAY_NAME
    avatar_url: str | None = AVATAR_URL

    @classmethod
    def of(cls, user: User) -> Me:
        return cls(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            display_name=user.display_name,
            avatar_url=avatar_url(user),
        )


def avatar_url(user: User) -> str | None:
    """A user object's avatar_url (app.faces)."""
    return faces.avatar_url(user.id, user.avatar_key) if user.avatar_key else None


class MePatch(BaseModel):
    model_config = STRICT

    display_name: str = Field(
        max_length=MAX_DISPLAY_NAME,
        description=f"Up to {MAX_DISPLAY_NAME} characters; control characters, bidi overrides "
        "and zero-width characters are removed and spaces collapsed; empty clears it.",
        examples=["Alice Liddell"],
    )


class UserOut(Me):
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            created_at=user.created_at,
            display_name=user.display_name,
            avatar_url=avatar_url(user),
        )


class UserPatch(BaseModel):
    # Strict: the schema says boolean, so 0 or "yes" is refused (422), not read as one.
    is_admin: bool = Field(
        strict=True, description="Grant (true) or take away (false) admin rights."
    )


# Rooms ----------------------------------------------------------------------


class RoomOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[1])
    name: str = Field(examples=["general"])
    description: str = Field(examples=["Talk about anything"])
    kind: Literal["public", "private", "direct"] = Field(
        "public",
        description="public: everyone reads it; private and direct: its members only.",
        examples=["public"],
    )
    online: int = Field(0, description="People with the room open right now.", examples=[3])
    created_at: datetime
    unread: int = Field(
        0,
        description=f"Messages by others after the caller's read position; counting stops "
        f"at {CAP} (shown as {CAP - 1}+).",
        examples=[3],
    )
    mentions: int = Field(
        0,
        description=f"Unread messages that mention the caller; counting stops at {CAP}.",
        examples=[1],
    )

    @classmethod
    def of(cls, room: Room, online: dict[int, int], counts: Counts = NONE) -> RoomOut:
        out = cls.model_validate(room)
        out.online = online.get(room.id, 0)
        out.unread, out.mentions = counts.unread, counts.mentions
        return out


class ReadIn(BaseModel):
    model_config = STRICT

    seq: int = Field(
        strict=True,
        description="The highest seq the caller has seen in the room. The position only "
        "moves forward: a lower one changes nothing, and one past the room's last seq "
        "counts as its last seq.",
        examples=[42],
    )


class ReadOut(BaseModel):
    room_id: int = Field(examples=[1])
    seq: int = Field(description="The caller's read position now.", examples=[42])
    unread: int = Field(examples=[0])
    mentions: int = Field(examples=[0])


RoomName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ROOM_NAME,
        pattern=ROOM_NAME,
        description=f"1–{MAX_ROOM_NAME} characters without control characters, unique; "
        "spaces around it are dropped.",
        examples=["general"],
    ),
]
Description = Annotated[
    str, Field(max_length=MAX_DESCRIPTION, pattern=NO_NUL, examples=["Talk about anything"])
]


class RoomIn(BaseModel):
    model_config = STRICT

    name: RoomName
    description: Description = ""
    kind: Literal["public", "private"] = Field(
        "public", description="A private room's creator is its first member."
    )


class MemberOut(BaseModel):
    id: int = Field(examples=[2])
    username: str = Field(examples=["bob"])
    display_name: str | None = DISPLAY_NAME
    avatar_url: str | None = AVATAR_URL

    @classmethod
    def of(cls, user: User) -> MemberOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            avatar_url=avatar_url(user),
        )


class DirectIn(BaseModel):
    model_config = STRICT

    usernames: list[Annotated[str, Field(pattern=USERNAME_RE.pattern)]] = Field(
        min_length=1,
        max_length=MAX_DIRECT - 1,
        description="The other people (the caller is always in it): 2–8 people in all.",
        examples=[["bob"]],
    )


class RoomPatch(BaseModel):
    model_config = STRICT

    name: RoomName | None = Field(None, description="A new name; omit to keep the name.")
    description: Description | None = Field(None, description="A new description; omit to keep it.")


# Messages -------------------------------------------------------------------


class ReactionOut(BaseModel):
    emoji: str = Field(examples=["👍"])
    count: int = Field(examples=[2])
    usernames: list[str] = Field(
        description=f"Who reacted, in the order they did (at most {MAX_NAMED}).",
        examples=[["alice", "bob"]],
    )


class AttachmentOut(BaseModel):
    id: str = Field(description="Random; also the file's name in storage.")
    name: str = Field(
        description="The client's file name made safe to show (no path, controls or "
        "bidi overrides; at most 200 characters).",
        examples=["report.pdf"],
    )
    size: int = Field(description="Bytes.", examples=[48213])
    content_type: str = Field(
        description="Found from the bytes, not from the name or the client "
        "(`application/octet-stream` when unknown).",
        examples=["application/pdf"],
    )
    url: str = Field(description="The file: for the room's readers only.")
    thumbnail_url: str | None = Field(
        description="A WebP thumbnail, for PNG, JPEG, GIF and WebP images."
    )

    @classmethod
    def of(cls, attachment: files.Shown) -> AttachmentOut:
        return cls(
            id=attachment.id,
            name=attachment.name,
            size=attachment.size,
            content_type=attachment.content_type,
            url=files.url(attachment),
            thumbnail_url=files.thumbnail_url(attachment),
        )


class MessageOut(BaseModel):
    id: int = Field(examples=[42])
    seq: int = Field(
        description="The room's seq of the message's creation. Seqs number every change "
        "in a room (new messages, edits, deletes), so messages' seqs may skip some.",
        examples=[7],
    )
    rev: int = Field(
        description="The room's seq of the message's latest change (its creation, an "
        "edit, its delete or a reaction).",
        examples=[9],
    )
    room_id: int = Field(examples=[1])
    author: str | None = Field(
        description="The author's username; null once the message is deleted.",
        examples=["alice"],
    )
    author_display_name: str | None = Field(
        None, description="The author's display name, if they have one (null once deleted)."
    )
    text: str | None = Field(
        description="The text as it was sent (Markdown source); null once the message is deleted.",
        examples=["Hi *all*"],
    )
    html: str | None = Field(
        description="The text as the page shows it: the Markdown subset rendered and "
        "sanitized; null once the message is deleted.",
        examples=["<p>Hi <em>all</em></p>"],
    )
    created_at: datetime
    edited_at: datetime | None = Field(None, description="When it was last edited, if it was.")
    deleted: bool = Field(False, description="A deleted message stays as a tombstone.")
    mentions: list[str] = Field(
        default_factory=list,
        description="The usernames the text mentions (`@name` of someone who can read the room).",
        examples=[["bob"]],
    )
    reactions: list[ReactionOut] = Field(
        default_factory=list, description="Each emoji, in the order it was first used."
    )
    attachment: AttachmentOut | None = Field(
        None, description="Its (first) file, if it was posted with files."
    )
    attachments: list[AttachmentOut] = Field(
        default_factory=list, description="Every file posted with it, in order."
    )

    @classmethod
    def of(
        cls,
        message: Message,
        reactions: Reactions = (),
        attachments: Sequence[files.Shown] = (),
    ) -> MessageOut:
        row = render.MessageView.of(message, reactions)
        return cls.of_row(row, room_id=message.room_id, attachments=attachments)

    @classmethod
    def of_row(
        cls, row: MessageView, *, room_id: int, attachments: Sequence[files.Shown] = ()
    ) -> MessageOut:
        deleted = row.deleted
        shown = [] if deleted else [AttachmentOut.of(a) for a in attachments]
        return cls(
            id=row.id,
            seq=row.seq,
            rev=row.rev or row.seq,
            room_id=room_id,
            author=None if deleted else row.author,
            author_display_name=None if deleted else row.display_name,
            text=None if deleted else row.text,
            html=None if deleted else str(render.text_html(row)),
            created_at=row.created_at,
            edited_at=row.edited_at,
            deleted=deleted,
            mentions=[] if deleted else row.mentions.split(),
            reactions=[
                ReactionOut(emoji=emoji, count=count, usernames=list(names))
                for emoji, names, count in row.reactions
            ],
            attachment=shown[0] if shown else None,
            attachments=shown,
        )


# What a new message's or an edit's text may be (the writer trims it).
MessageText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=NOT_BLANK)]


class MessageEdit(BaseModel):
    model_config = STRICT

    text: MessageText = Field(
        description=f"The new text: up to {MAX_TEXT} characters; trimmed.",
        examples=["Hello, room! (fixed)"],
    )


class MessageIn(BaseModel):
    model_config = STRICT

    text: MessageText = Field(
        description=f"Up to {MAX_TEXT} characters; trimmed.",
        examples=["Hello, room!"],
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CLIENT_ID,
        pattern=NO_NUL,
        description="Makes a retry safe: the same author and client_id save one message.",
        examples=["3f2a9c1e-retry-safe"],
    )


# Search ---------------------------------------------------------------------


class SearchHit(BaseModel):
    room_id: int = Field(examples=[1])
    room_name: str = Field(
        description="The room's name; for a direct conversation, the other people's names.",
        examples=["general"],
    )
    message_id: int = Field(examples=[42])
    seq: int = Field(
        description="The message's seq: its permalink is `/rooms/{room_id}/messages/{seq}`.",
        examples=[7],
    )
    author: str = Field(examples=["alice"])
    snippet: str = Field(
        description="Escaped HTML: the text around the first match, each matching word "
        "in `<mark>`.",
        examples=["we meet at the <mark>café</mark> at noon"],
    )
    created_at: datetime
