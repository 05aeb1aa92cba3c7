"""All configuration, read from ``TALKROOM_*`` variables and an optional ``.env``.

This is the only module that reads the environment.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(Exception):
    """The configuration cannot work; the message says why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TALKROOM_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    allowed_origins: Annotated[list[str], NoDecode] = []

    message_rate: float = 5.0
    message_burst: int = 10
    max_message_length: int = 4000
    max_frame_bytes: int = 65536
    history_page: int = 50
    resync_limit: int = 500
    outbox_size: int = 256
    sockets_per_user: int = 20
    # uvicorn pings every socket this often and closes it when no pong comes back in
    # time: a peer that vanished without closing (a laptop lid, a dead NAT) is let go.
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0

    # Who may create public and private rooms: everyone, or only admins.
    room_creation: Literal["everyone", "admins"] = "everyone"
    # open: anyone may sign up; invite: only through a link an admin made (the very
    # first account, on an empty database, needs none: it becomes the admin).
    registration: Literal["open", "invite"] = "open"
    # How long an invitation link lasts unless its maker says otherwise.
    invite_days: float = 7.0
    # The address people open talkroom at, for the links `talkroom invite` prints
    # (default: the first allowed origin, else http://127.0.0.1:8000).
    public_url: str | None = None

    session_max_age: int = 14 * 24 * 3600
    session_idle: int = 3 * 24 * 3600
    hash_concurrency: int = 2
    # argon2id's cost for each new password hash: RFC 9106's second recommended
    # choice (64 MiB, 3 passes, 4 lanes), about 0.2 s of four cores. Each hash
    # records its own cost, so changing these never locks anyone out; the test
    # suite lowers them, as Django's does with a fast hasher, because thousands of
    # sign-ups at full cost were minutes of its CI time.
    password_memory_kib: int = 65536
    password_passes: int = 3
    password_lanes: int = 4
    presence_ttl: int = 15
    # How often each process checks that its sockets' sessions and rooms still
    # exist: how long a lost close event (logout, removed user, deleted room) can
    # leave a socket open.
    socket_check_interval: float = 5.0
    # Outgoing webhooks (app.webhooks). Private, loopback and link-local targets are
    # refused unless allowed (a bot on the same host or network, or tests).
    webhook_allow_private: bool = False
    webhook_timeout: float = 5.0  # one attempt, connect to last byte of the reply
    webhook_max_reply: int = 65536  # bytes of a reply read; a longer one is a failure
    webhook_attempts: int = 5  # then the delivery has failed
    webhook_backoff: float = 2.0  # before the first retry; doubled each time...
    webhook_backoff_cap: float = 300.0  # ...up to this
    webhook_queue: int = 100  # waiting deliveries per bot; the oldest beyond are dropped
    webhook_poll: float = 0.5  # how often each process looks for due deliveries
    webhook_concurrency: int = 8  # deliveries in flight per process (one per bot)
    # Attachments (app.files). Files live under storage_dir (default: uploads/ in the
    # data directory; one shared volume when many hosts serve). One upload request
    # carries at most max_upload_mb of files, counted while it streams in.
    storage_dir: Path | None = None
    max_upload_mb: float = 25.0
    max_upload_files: int = 10
    # Images with more pixels than this get no thumbnail (they are never decoded):
    # a 30,000 x 30,000 PNG is a few KB compressed and 3.6 GB decoded.
    max_image_pixels: int = 40_000_000
    thumbnail_size: int = 480
    # How often each process removes files that no attachment names any more (a
    # deleted room's or user's), once they are this old (an upload in progress is younger).
    storage_sweep_interval: float = 3600.0
    storage_sweep_age: float = 3600.0
    # Where --workers processes pool their Prometheus metrics (default: a temporary directory).
    metrics_dir: Path | None = None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @cached_property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'talkroom.db'}"

    @property
    def site_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return self.allowed_origins[0] if self.allowed_origins else "http://127.0.0.1:8000"

    @property
    def uploads(self) -> Path:
        return self.storage_dir or self.data_dir / "uploads"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def is_sqlite(self) -> bool:
        return self.database.startswith("sqlite")

    @cached_property
    def secret(self) -> str:
        """The signing key; in development, generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        if self.env == "production":
            raise SettingsError("TALKROOM_SECRET_KEY is required when TALKROOM_ENV=production.")
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def check(self) -> None:
        """Fail fast on a configuration that cannot work."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _ = self.secret
        if not self.database.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                "TALKROOM_DATABASE_URL must start with sqlite+aiosqlite:// "
                "or postgresql+asyncpg://."
            )


def get_settings() -> Settings:
    return Settings()
