"""The account page: the password, and the sessions the user is logged in with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import auth, devices
from app.auth import SESSION_COOKIE, AuthError, session_tag
from app.users import close_session_sockets, close_sockets
from app.web.deps import DbDep, FormStr, PageUser, PasswordsDep, session_id
from app.web.pages import page, set_cookie, start_login

router = APIRouter(include_in_schema=False)

NOTICES = {
    "password": "Password changed. Every other session was logged out.",
    "others": "Every other session was logged out.",
    "one": "That session was logged out.",
    "profile": "Display name saved.",
    "avatar": "Avatar saved.",
    "no-avatar": "Avatar removed: your initials show instead.",
}


@dataclass(frozen=True)
class SessionRow:
    """A session as the page lists it: never its id, which is a bearer secret."""

    tag: str
    device: str
    address: str
    last_seen: datetime
    current: bool


async def session_rows(request: Request, db: DbDep, user_id: int) -> list[SessionRow]:
    current = session_id(request)
    sessions = await auth.user_sessions(db, user_id)
    names = await devices.describe([s.user_agent for s in sessions])
    return [
        SessionRow(
            tag=session_tag(s.id),
            device=names[s.user_agent],
            address=s.address,
            last_seen=s.last_seen,
            current=s.id == current,
        )
        for s in sessions
    ]


async def account_page_for(
    request: Request, db: DbDep, user_id: int, status_code: int = 200, **context: str | None
) -> HTMLResponse:
    context.setdefault("error", None)
    context.setdefault("notice", None)
    sessions = await session_rows(request, db, user_id)
    return page(request, "account.html", status_code, sessions=sessions, **context)


@router.get("/account")
async def account_page(request: Request, user: PageUser, db: DbDep, done: str = "") -> HTMLResponse:
    return await account_page_for(request, db, user.id, notice=NOTICES.get(done))


@router.post("/account/password")
async def change_password(
    request: Request,
    user: PageUser,
    db: DbDep,
    passwords: PasswordsDep,
    current_password: FormStr,
    new_password: FormStr,
) -> Response:
    """A new password ends every session of the user, this one included, and closes
    their sockets; this browser gets a fresh session so it stays logged in."""
    throttle = request.app.state.login_throttle
    account = user.username_key
    address = request.client.host if request.client else "?"
    wait = await throttle.retry_after(account=account, address=address)
    if wait:
        # Guessing the current password from a stolen session is guessing a login.
        error = f"Too many wrong passwords; try again in {int(wait) + 1} s."
        response = await account_page_for(request, db, user.id, 429, error=error)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        await auth.change_password(db, passwords, user, current=current_password, new=new_password)
    except AuthError as exc:
        if isinstance(exc, auth.WrongPassword):
            await throttle.failed(account=account, address=address)
        return await account_page_for(request, db, user.id, 400, error=str(exc))
    await close_sockets(request.app.state.hub.broker, user.id)
    return await start_login(request, user, "/account?done=password")


@router.post("/account/sessions/others/end")
async def end_other_sessions(request: Request, user: PageUser, db: DbDep) -> RedirectResponse:
    """Log out everywhere else: every other session ends and its sockets close."""
    current = session_id(request)
    others = [s.id for s in await auth.user_sessions(db, user.id) if s.id != current]
    await end_and_close(request, db, user.id, others)
    return RedirectResponse("/account?done=others", status_code=303)


@router.post("/account/sessions/{tag}/end")
async def end_one_session(request: Request, user: PageUser, db: DbDep, tag: str) -> Response:
    """Log one session out, found by its tag; ending this browser's own is a logout."""
    current = session_id(request)
    chosen = [s.id for s in await auth.user_sessions(db, user.id) if session_tag(s.id) == tag]
    if not chosen:
        error = "That session has ended already."
        return await account_page_for(request, db, user.id, 404, error=error)
    await end_and_close(request, db, user.id, chosen)
    if chosen == [current]:
        response = RedirectResponse("/login", status_code=303)
        set_cookie(request, response, SESSION_COOKIE, "", max_age=0)
        return response
    return RedirectResponse("/account?done=one", status_code=303)


async def end_and_close(request: Request, db: DbDep, user_id: int, ids: list[str]) -> None:
    """End the sessions, then close the sockets opened with them on every worker:
    a socket checks its session only at the handshake."""
    broker = request.app.state.hub.broker
    for ended in await auth.end_sessions(db, user_id, ids):
        await close_session_sockets(broker, ended)
