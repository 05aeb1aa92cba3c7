"""The application factory: services, routers, static files, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app import access, metrics
from app.auth import Passwords, Signer
from app.backends import create_backends
from app.chat import Chat
from app.db import Database
from app.files import sweep
from app.hub import Hub
from app.settings import Settings
from app.web import account, admin, admin_bots, api, docs, errors, faces, files, pages, ws
from app.web.body_limit import BodyLimit
from app.web.deps import csrf_protect
from app.web.headers import SecurityHeaders
from app.web.reads import SharedReads
from app.webhooks import worker as webhooks

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings)
        backends = create_backends(settings)
        await backends.broker.connect()
        hub = Hub(backends.broker)
        await hub.start()
        app.state.settings = settings
        app.state.db = db
        app.state.hub = hub
        app.state.signer = Signer(settings.secret)
        app.state.passwords = Passwords.of(settings)
        app.state.login_throttle = backends.login_throttle
        app.state.chat = Chat(
            settings=settings,
            db=db,
            broker=backends.broker,
            presence=backends.presence,
            limiter=backends.limiter,
            typing=backends.typing,
        )
        tasks = [asyncio.create_task(access.keep_checking(hub, db, settings.socket_check_interval))]
        tasks.append(asyncio.create_task(webhooks.run(app.state.chat, settings), name="webhooks"))
        tasks.append(
            asyncio.create_task(
                sweep.keep_sweeping(
                    db,
                    app.state.chat.storage,
                    settings.storage_sweep_interval,
                    settings.storage_sweep_age,
                ),
                name="attachment-sweep",
            )
        )
        if backends.shared:
            tasks.append(
                asyncio.create_task(keep_presence(app.state.chat, settings.presence_ttl / 4))
            )
        logger.info("talkroom is ready.")
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.stop()
            await backends.close()
            await db.close()
            metrics.process_exit(settings.metrics_dir)

    app = FastAPI(
        title="talkroom",
        summary="Real-time room chat: rooms, messages and accounts.",
        description=docs.DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
        # Our /docs serves Swagger UI from the app, not from a CDN (app/web/docs.py).
        docs_url=None,
        redoc_url=None,
        exception_handlers=errors.EXCEPTION_HANDLERS,
    )
    app.add_middleware(BodyLimit, limits=faces.BODY_LIMITS)
    app.add_middleware(SharedReads)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(account.router)
    app.include_router(faces.router)
    app.include_router(api.router)
    app.include_router(files.router)
    app.include_router(admin.router)
    app.include_router(admin_bots.router)
    app.include_router(metrics.router)
    docs.install(app)
    app.include_router(ws.router)

    return app


async def keep_presence(chat: Chat, interval: float) -> None:
    """Heartbeat this worker's presence and reap dead workers', for as long as we serve."""
    while True:
        try:
            await chat.tend_presence()
        except Exception:
            logger.exception("Presence upkeep failed; trying again.")
        await asyncio.sleep(interval)
