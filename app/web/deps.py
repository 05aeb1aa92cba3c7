"""Request dependencies: the app's services, the current user, CSRF.

Routes declare what they need with these ``Annotated`` aliases, so lookups and
permission checks cannot be forgotten.
"""

from __future__ import annotations

from typing import Annotated, cast
from urllib.parse import quote

from fastapi import Depends, Form, HTTPException, Path, Request
from starlette.requests import HTTPConnection

from app import access
from app.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Passwords,
    Signer,
    cookie_name,
    new_token,
    session_user,
    tokens_match,
)
from app.chat import Chat
from app.db import Database
from app.hub import Hub
from app.models import Room, User
from app.settings import Settings
from app.tokens import token_user
from app.web.limits import MAX_ID

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Bodies read as they stream in (app.files.multipart), never parsed whole here for a
# csrf_token field: with the cookie they need the X-CSRF-Token header.
STREAMED = ("/attachments",)
NO_SUCH_ROOM = "No such room."


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path

    @property
    def location(self) -> str:
        return f"/login?next={quote(self.next_path, safe='/')}"


# The app's parts, as dependencies. async although they never wait: FastAPI runs a
# plain def dependency in its thread pool, a thread hop per request each.
# Starlette's app.state holds Any: each cast says what app.main put there.
async def get_settings(conn: HTTPConnection) -> Settings:
    return cast(Settings, conn.app.state.settings)


async def get_db(conn: HTTPConnection) -> Database:
    return cast(Database, conn.app.state.db)


async def get_chat(conn: HTTPConnection) -> Chat:
    return cast(Chat, conn.app.state.chat)


async def get_hub(conn: HTTPConnection) -> Hub:
    return cast(Hub, conn.app.state.hub)


async def get_signer(conn: HTTPConnection) -> Signer:
    return cast(Signer, conn.app.state.signer)


async def get_passwords(conn: HTTPConnection) -> Passwords:
    return cast(Passwords, conn.app.state.passwords)


def is_secure(conn: HTTPConnection) -> bool:
    """Served over https: uvicorn sets the scheme from X-Forwarded-Proto when the
    proxy is one it trusts (--forwarded-allow-ips, loopback by default)."""
    return conn.url.scheme in ("https", "wss")


def session_cookie_name(conn: HTTPConnection) -> str:
    return cookie_name(SESSION_COOKIE, secure=is_secure(conn))


def csrf_cookie_name(conn: HTTPConnection) -> str:
    return cookie_name(CSRF_COOKIE, secure=is_secure(conn))


def session_id(conn: HTTPConnection) -> str | None:
    """The session id in this request's signed cookie, if any."""
    signer: Signer = conn.app.state.signer
    return signer.session_id(conn.cookies.get(session_cookie_name(conn)))


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
ChatDep = Annotated[Chat, Depends(get_chat)]
HubDep = Annotated[Hub, Depends(get_hub)]
SignerDep = Annotated[Signer, Depends(get_signer)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]


async def cookie_user(conn: HTTPConnection) -> User | None:
    """The user of the session cookie, looked up once per request."""
    if "user" not in conn.scope.setdefault("state", {}):
        state = conn.app.state
        conn.state.user = await session_user(state.db, state.settings, session_id(conn))
    return cast(User | None, conn.state.user)


async def page_user(request: Request) -> User:
    user = await cookie_user(request)
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return user


def not_authenticated(detail: str = "Not authenticated.") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def api_user(request: Request) -> User:
    """The bearer token's user, else the session cookie's. A request that sends an
    Authorization header is judged on it alone: a bad token never falls back to a
    cookie the client may not even know it sent."""
    known = request.scope.get("state", {}).get("api_user")
    if known is not None:
        return cast(User, known)
    user = await _api_user(request)
    request.state.api_user = user
    return user


async def _api_user(request: Request) -> User:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = await token_user(request.app.state.db, token.strip())
        if user is None:
            raise not_authenticated("The API token is invalid or was revoked.")
        request.state.user = user
        return user
    user = await cookie_user(request)
    if user is None:
        raise not_authenticated()
    return user


async def room_viewer(request: Request) -> User:
    """Whoever asks for a room: the API's caller, or the page's (else a login)."""
    if request.url.path.startswith("/api/"):
        return await api_user(request)
    return await page_user(request)


async def api_admin(user: Annotated[User, Depends(api_user)]) -> User:
    if not user.is_admin:
        raise HTTPException(403, "Only admins can do that.")
    return user


MaybeUser = Annotated[User | None, Depends(cookie_user)]
PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]
ApiAdmin = Annotated[User, Depends(api_admin)]


RoomId = Annotated[int, Path(ge=1, le=MAX_ID, description="The room's id.", examples=[1])]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.", examples=[1])]
FormStr = Annotated[str, Form()]


async def path_room(
    room_id: RoomId, chat: ChatDep, user: Annotated[User, Depends(room_viewer)]
) -> Room:
    """The room the path names, if the caller can read it (app.access), for pages
    and the API alike: a room they cannot read is answered exactly as a missing one.
    An id out of range is a 422 the API documents; on a page it is Not Found
    (errors.validation_error)."""
    room = await access.readable_room(chat.db, user, room_id)
    if room is None:
        raise HTTPException(404, NO_SUCH_ROOM)
    return room


RoomDep = Annotated[Room, Depends(path_room)]


async def readable_rooms(request: Request, chat: ChatDep, user: User) -> list[Room]:
    """The rooms ``user`` can read (app.access), by name; read once per request, as
    the page that lists them also opens one of them."""
    known = request.scope.get("state", {}).get("readable_rooms")
    if known is not None and known[0] == user.id:
        return cast(list[Room], known[1])
    found = await chat.rooms(user)
    request.state.readable_rooms = (user.id, found)
    return found


async def listed_room(
    request: Request, room_id: RoomId, chat: ChatDep, user: Annotated[User, Depends(page_user)]
) -> Room:
    """path_room for a page that also lists the user's rooms: the room is the one of
    that list (the same rule, app.access.readable_rooms), so it costs no query of
    its own; a room not in it is the unknown room's 404."""
    for room in await readable_rooms(request, chat, user):
        if room.id == room_id:
            return room
    raise HTTPException(404, NO_SUCH_ROOM)


ListedRoomDep = Annotated[Room, Depends(listed_room)]


async def managed_room(
    room_id: RoomId, chat: ChatDep, user: Annotated[User, Depends(room_viewer)]
) -> Room:
    """The room the path names for managing it: any room for an admin (who can rename,
    delete and see the members of a private room or DM without reading it), else as
    path_room: one the caller can read, or exactly the unknown-room answer."""
    if user.is_admin:
        room = await chat.room(room_id)
    else:
        room = await access.readable_room(chat.db, user, room_id)
    if room is None:
        raise HTTPException(404, NO_SUCH_ROOM)
    return room


ManagedRoomDep = Annotated[Room, Depends(managed_room)]


async def page_admin(user: PageUser) -> User:
    if not user.is_admin:
        raise HTTPException(403, "Only admins can see this page.")
    return user


PageAdmin = Annotated[User, Depends(page_admin)]


def csrf_token(conn: HTTPConnection) -> str:
    """This browser's CSRF token, from its cookie or new (the response sets the cookie)."""
    signer: Signer = conn.app.state.signer
    token = signer.csrf_token(conn.cookies.get(csrf_cookie_name(conn)))
    if token is None:
        token = conn.scope.setdefault("state", {}).get("new_csrf")
        if token is None:
            token = conn.state.new_csrf = new_token()
    return token


async def csrf_protect(conn: HTTPConnection) -> None:
    """Applied to every route: unsafe methods need the token (header or form field).

    Requests with a bearer token carry no ambient credentials, so they need none.
    """
    if conn.scope["type"] != "http" or conn.scope["method"] in SAFE_METHODS:
        return
    if conn.headers.get("authorization", "").lower().startswith("bearer "):
        return
    if conn.url.path.startswith("/api/") and session_cookie_name(conn) not in conn.cookies:
        return  # no ambient credentials to abuse: the API answers 401 itself
    expected = conn.app.state.signer.csrf_token(conn.cookies.get(csrf_cookie_name(conn)))
    given = conn.headers.get("x-csrf-token")
    if given is None and isinstance(conn, Request) and not conn.url.path.endswith(STREAMED):
        content_type = conn.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await conn.form()).get("csrf_token")
            given = value if isinstance(value, str) else None
    if not tokens_match(expected, given):
        raise HTTPException(403, "The CSRF token is missing or wrong; reload the page and retry.")
