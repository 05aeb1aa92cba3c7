"""HTML pages and the fragments htmx asks for."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app import auth
from app.auth import CSRF_COOKIE, SESSION_COOKIE, AuthError
from app.chat import oldest_first
from app.render import render
from app.web.deps import (
    ChatDep,
    DbDep,
    HubDep,
    PageUser,
    PasswordsDep,
    RoomDep,
    SettingsDep,
    csrf_token,
)

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template for this request, setting the CSRF cookie when it is new."""
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token(request)
    response = HTMLResponse(render(name, **context), status_code=status_code)
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(request, response, CSRF_COOKIE, request.app.state.signer.csrf_cookie(new))
    return response


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=request.app.state.settings.session_max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def safe_next(target: str | None) -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative //evil."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


async def start_login(request: Request, user: auth.User, target: str) -> RedirectResponse:
    state = request.app.state
    old = state.signer.session_id(request.cookies.get(SESSION_COOKIE))
    if old:
        await auth.end_session(state.db, old)
    session_id = await auth.start_session(state.db, state.settings, user)
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, state.signer.session_cookie(session_id))
    return response


@router.get("/register")
async def register_form(request: Request) -> HTMLResponse:
    return page(request, "register.html", username="", error=None)


@router.post("/register")
async def register(
    request: Request, db: DbDep, passwords: PasswordsDep, username: FormStr, password: FormStr
) -> Response:
    username = username.strip()
    try:
        user = await auth.create_user(db, passwords, username=username, password=password)
    except AuthError as exc:
        return page(request, "register.html", 400, username=username, error=str(exc))
    return await start_login(request, user, "/")


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html", username="", next=safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request,
    db: DbDep,
    passwords: PasswordsDep,
    username: FormStr,
    password: FormStr,
    next: Annotated[str, Form()] = "/",
) -> Response:
    throttle = request.app.state.login_throttle
    account = username.strip().casefold()
    address = request.client.host if request.client else "?"
    wait = throttle.retry_after(account=account, address=address)
    if wait:
        error = f"Too many failed logins; try again in {int(wait) + 1} s."
        response = page(
            request, "login.html", 429, username=username, next=safe_next(next), error=error
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await auth.authenticate(db, passwords, username=username.strip(), password=password)
    if user is None:
        throttle.failed(account=account, address=address)
        error = "Wrong username or password."
        return page(
            request, "login.html", 400, username=username, next=safe_next(next), error=error
        )
    throttle.succeeded(account=account)
    return await start_login(request, user, safe_next(next))


@router.post("/logout")
async def logout(request: Request, db: DbDep) -> RedirectResponse:
    session_id = request.app.state.signer.session_id(request.cookies.get(SESSION_COOKIE))
    if session_id:
        await auth.end_session(db, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def chat_context(chat: ChatDep, room: Any = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "rooms": await chat.rooms(),
        "online": await chat.online(),
        "room": room,
        "max_length": chat.settings.max_message_length,
    }
    if room is not None:
        context["messages"] = oldest_first(
            await chat.history(room.id, limit=chat.settings.history_page)
        )
        context["members"] = await chat.presence.members(room.id)
    return context


@router.get("/")
async def home(request: Request, user: PageUser, chat: ChatDep) -> HTMLResponse:
    return page(request, "chat.html", **await chat_context(chat))


@router.get("/rooms")
async def room_list(request: Request, user: PageUser, chat: ChatDep) -> HTMLResponse:
    return page(
        request, "fragments/rooms.html", rooms=await chat.rooms(), online=await chat.online()
    )


@router.get("/rooms/{room_id}")
async def room_page(request: Request, user: PageUser, room: RoomDep, chat: ChatDep) -> HTMLResponse:
    context = await chat_context(chat, room)
    # htmx restoring history it had no snapshot of wants the whole page.
    fragment = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    response = page(request, "fragments/room.html" if fragment else "chat.html", **context)
    # One URL, two bodies: caches (and the back button) must tell them apart.
    response.headers["Vary"] = "HX-Request"
    return response


@router.get("/rooms/{room_id}/messages")
async def older_messages(
    request: Request, user: PageUser, room: RoomDep, chat: ChatDep, before: int
) -> HTMLResponse:
    messages = await chat.history(room.id, before=before, limit=chat.settings.history_page)
    return page(request, "fragments/history.html", room=room, messages=oldest_first(messages))


@router.get("/healthz")
async def healthz(db: DbDep, hub: HubDep, settings: SettingsDep) -> JSONResponse:
    checks = {"database": await db.ping()}
    if settings.redis_url:
        checks["redis"] = await hub.broker.ping()
    ok = all(checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
    if not ok:
        body["failing"] = [name for name, up in checks.items() if not up]
    return JSONResponse(body, status_code=200 if ok else 503)
