"""The tables, as SQLAlchemy 2 typed mappings. Alembic migrations mirror them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Ids are 32-bit integers on PostgreSQL: a larger one names no row (and SQLite would
# raise OverflowError on it), so lookups and routes refuse it before the database.
MAX_ID = 2**31 - 1
# Column widths that are also limits users meet (app.rooms and app.chat enforce
# them, the web layer documents them).
MAX_ROOM_NAME = 64
MAX_DESCRIPTION = 500
MAX_CLIENT_ID = 64
# What a session keeps of the browser that logged in, for the account page's list.
MAX_USER_AGENT = 300
MAX_ADDRESS = 64
# A bot's webhook URL (app.webhooks.urls refuses longer ones) and its signing secret.
MAX_WEBHOOK_URL = 2000
MAX_EMOJI = 32  # characters of one emoji (a long ZWJ sequence with modifiers is ~15)
MAX_STORAGE_KEY = 40  # a random storage id (app.files.storage)
MAX_FILE_NAME = 200  # an attachment's shown name, after app.files.names cleaned it
MAX_CONTENT_TYPE = 100
MAX_DISPLAY_NAME = 64  # characters, after app.faces cleans it
MAX_AVATAR_KEY = 16


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# Explicit constraint names, so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # casefold() of the username: uniqueness is case-insensitive on every backend.
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A bot (app.bots) has no password (an empty hash, which nothing verifies
    # against) and acts only through API tokens; with a webhook URL it is told of
    # the messages that mention it (app.webhooks).
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    webhook_url: Mapped[str | None] = mapped_column(String(MAX_WEBHOOK_URL), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Shown beside the username (app.faces); None: the username alone.
    display_name: Mapped[str | None] = mapped_column(String(MAX_DISPLAY_NAME), nullable=True)
    # A hash of the avatar's bytes (UserAvatar), the version in its URL; None: initials.
    avatar_key: Mapped[str | None] = mapped_column(String(MAX_AVATAR_KEY), nullable=True)


class UserAvatar(Base):
    """A user's avatar: a small square thumbnail (a few KB), made by app.avatars.
    In the database, not on disk: every host serves it with no shared volume."""

    __tablename__ = "user_avatars"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    image: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_ROOM_NAME), unique=True)
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The seq of the room's newest change (a new message, an edit, a delete, a
    # reaction): bumped under the row lock by each, so changes commit in seq order.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # public: everyone reads it; private and direct: only its members (app.access).
    kind: Mapped[str] = mapped_column(String(16), default="public", server_default="public")
    # A user id without a foreign key (SQLite could add one only by copying the
    # table, which would cascade to its messages): app.users.delete_user clears it.
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A direct room's sorted member ids ("3,7,12"): one room per set of people. Its
    # name is derived from this key with a control character no room name may hold,
    # so names stay unique and not null without ever meeting a chosen one.
    direct_key: Mapped[str | None] = mapped_column(
        String(100), unique=True, index=True, nullable=True
    )


class RoomMember(Base):
    """Who may read a private or direct room."""

    __tablename__ = "room_members"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("room_id", "seq", name="uq_messages_room_seq"),
        UniqueConstraint("author_id", "client_id", name="uq_messages_author_client"),
        # Catch-up reads the messages changed after a seq, in the order they changed.
        Index("ix_messages_room_rev", "room_id", "rev"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    # SET NULL: a removed user's messages stay as tombstones (app.users.delete_user
    # made them so, each with its room's next seq, before the row went).
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, nullable=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)  # the room's seq of its creation
    # The room's seq of the message's latest change (its creation, an edit, its
    # delete, a reaction): what a resume from seq S looks for above S.
    rev: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)  # emptied when the message is deleted
    client_id: Mapped[str | None] = mapped_column(String(MAX_CLIENT_ID), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The usernames the text mentions, space-separated, as app.mentions found them
    # at save time: the fragment renders from the row alone (message_mentions is
    # what the unread counts read).
    mentions: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The text as HTML (app.markup), rendered once by the writer; NULL for messages
    # saved before formatting, which are rendered from the text when read.
    html: Mapped[str | None] = mapped_column(Text, nullable=True)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A deleted message stays as a tombstone (no text, no mentions), so its delete
    # is a change a resume finds like any other.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    author: Mapped[User | None] = relationship(lazy="joined")  # None: a removed user's


class MessageMention(Base):
    """One user mentioned by one message; room and seq are copied from the message,
    so a user's unread mentions per room are counted from this index alone."""

    __tablename__ = "message_mentions"
    __table_args__ = (Index("ix_message_mentions_user_room_seq", "user_id", "room_id", "seq"),)

    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)


class MessageReaction(Base):
    """One user's reaction with one emoji to one message."""

    __tablename__ = "message_reactions"

    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    emoji: Mapped[str] = mapped_column(String(MAX_EMOJI), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A file posted with a message (app.files). Its id is random and is also the
    file's name in storage: the client's file name is only ever shown, never used."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(MAX_STORAGE_KEY), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"),
        index=True,
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)  # its place in the message
    name: Mapped[str] = mapped_column(String(MAX_FILE_NAME))  # sanitized for display
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(MAX_CONTENT_TYPE))  # sniffed
    # The thumbnail's storage key (PNG, JPEG, GIF and WebP images only) and size.
    thumbnail: Mapped[str | None] = mapped_column(String(MAX_STORAGE_KEY), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReadPosition(Base):
    """How far a user has read a room: the highest seq they have seen there."""

    __tablename__ = "read_positions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(MAX_USER_AGENT), default="", server_default="")
    address: Mapped[str] = mapped_column(String(MAX_ADDRESS), default="", server_default="")

    user: Mapped[User] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token for the API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so its owner can tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(lazy="joined")


class SearchReindex(Base):
    """Where a ``talkroom reindex`` got to, so an interrupted one resumes (one row).

    It indexes the messages with ids in (done, upto]; messages saved after it began
    (ids above upto) are indexed by the writer as usual."""

    __tablename__ = "search_reindex"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upto: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[int] = mapped_column(BigInteger)


class Invitation(Base):
    """A sign-up link an admin made. Only the SHA-256 of its token is stored: the
    link is shown once, and a copy of the database lets no one in."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    uses: Mapped[int] = mapped_column(Integer)  # how many accounts it may make
    used: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDelivery(Base):
    """One message to POST to one bot's webhook: a queue that survives restarts.

    status: pending (waiting, maybe for a retry at next_at), claimed (a worker is
    sending it until claimed_until; after that anyone may take it again), done,
    failed (out of attempts) or dropped (the bot's queue overflowed).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # A bot's oldest open delivery (its queue's head), and the due ones of all bots.
        Index("ix_webhook_deliveries_bot_status", "bot_id", "status", "id"),
        Index("ix_webhook_deliveries_status_next", "status", "next_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"),
        index=True,
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The last attempt's HTTP status (None: no answer) and what went wrong, if anything.
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(String(300), default="")
