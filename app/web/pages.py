"""HTML pages and the fragments htmx asks for."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import escape

from app import access, announce, auth, faces, invitations, mentions, rooms, unread, users
from app.auth import CSRF_COOKIE, SESSION_COOKIE, AuthError
from app.errors import ChatError, NotAllowed
from app.models import User
from app.render import Window, render
from app.search.find import Hit
from app.search.query import MAX_QUERY
from app.users import close_session_sockets
from app.web.deps import (
    ChatDep,
    DbDep,
    FormStr,
    HubDep,
    ListedRoomDep,
    ManagedRoomDep,
    PageUser,
    PasswordsDep,
    RoomDep,
    SettingsDep,
    csrf_token,
    is_secure,
    readable_rooms,
    session_id,
)
from app.web.limits import MAX_DESCRIPTION, MAX_ID, MAX_ROOM_NAME, MAX_SEQ

router = APIRouter(include_in_schema=False)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template for this request, setting the CSRF cookie when it is new."""
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token(request)
    response = HTMLResponse(render(name, **context), status_code=status_code)
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(request, response, CSRF_COOKIE, request.app.state.signer.csrf_cookie(new))
    return response


def set_cookie(
    request: Request, response: Response, base: str, value: str, *, max_age: int | None = None
) -> None:
    """Set one of our cookies; over https it is Secure and named with ``__Host-``."""
    secure = is_secure(request)
    response.set_cookie(
        auth.cookie_name(base, secure=secure),
        value,
        max_age=request.app.state.settings.session_max_age if max_age is None else max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
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


async def start_login(request: Request, user: User, target: str) -> RedirectResponse:
    state = request.app.state
    old = session_id(request)
    if old:
        await auth.end_session(state.db, old)
    new = await auth.start_session(
        state.db,
        state.settings,
        user,
        user_agent=request.headers.get("user-agent", ""),
        address=request.client.host if request.client else "",
    )
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, state.signer.session_cookie(new))
    return response


def sign_up_page(
    request: Request,
    status_code: int = 200,
    *,
    action: str = "/register",
    username: str = "",
    error: str | None = None,
    closed: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """The sign-up form, or (``closed``: a title) why this page makes no account."""
    return page(
        request,
        "register.html",
        status_code,
        action=action,
        username=username,
        error=error,
        closed=bool(closed),
        closed_title=closed,
        **context,
    )


async def sign_up_state(db: DbDep, settings: SettingsDep) -> tuple[bool, bool]:
    """(first run, invitation needed) for a sign-up without a link."""
    first = not await invitations.anyone_registered(db)
    return first, settings.registration == "invite" and not first


@router.get("/register")
async def register_form(request: Request, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    first, by_invitation = await sign_up_state(db, settings)
    if by_invitation:
        error = str(invitations.InvitationNeeded())
        return sign_up_page(request, 403, error=error, closed="Sign-up is by invitation")
    return sign_up_page(request, first_run=first)


@router.post("/register")
async def register(
    request: Request,
    db: DbDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    username: FormStr,
    password: FormStr,
) -> Response:
    return await sign_up(request, db, passwords, settings, username, password, token=None)


async def sign_up(
    request: Request,
    db: DbDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    username: str,
    password: str,
    *,
    token: str | None,
) -> Response:
    """Create the account (through the link ``token``, if any) and log it in. A link
    that cannot make one (any more) answers its page without a form."""
    username = username.strip()
    claim = invitations.sign_up_claim(token, settings.registration)
    action = "/register" if token is None else f"/invite/{token}"
    try:
        # A dead link or a closed sign-up is refused before the password is hashed:
        # refusals cost nothing. The claim decides again, atomically, with the account.
        if token is not None:
            await invitations.check(db, token)
        elif (await sign_up_state(db, settings))[1]:
            raise invitations.InvitationNeeded()
        user = await auth.create_user(
            db, passwords, username=username, password=password, claim=claim
        )
    except invitations.InvitationNeeded as exc:
        return sign_up_page(request, 403, error=str(exc), closed="Sign-up is by invitation")
    except invitations.InvitationError as exc:
        return sign_up_page(request, exc.status, error=str(exc), closed="This link cannot be used")
    except AuthError as exc:
        response = sign_up_page(request, 400, action=action, username=username, error=str(exc))
        return private_link(response) if token else response
    return await start_login(request, user, "/")


def private_link(response: HTMLResponse) -> HTMLResponse:
    """The page of an invitation link sends no Referer anywhere: the token is the
    link's secret, and this page's address holds it."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/invite/{token}")
async def invitation_form(request: Request, db: DbDep, token: str) -> HTMLResponse:
    """An invitation link: the sign-up form, or why the link makes no account."""
    try:
        await invitations.check(db, token)
    except invitations.InvitationError as exc:
        return sign_up_page(request, exc.status, error=str(exc), closed="This link cannot be used")
    return private_link(sign_up_page(request, action=f"/invite/{token}", invited=True))


@router.post("/invite/{token}")
async def register_invited(
    request: Request,
    db: DbDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    token: str,
    username: FormStr,
    password: FormStr,
) -> Response:
    return await sign_up(request, db, passwords, settings, username, password, token=token)


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
    # Capped: the throttle keeps a key per failed name, and names are at most 32 long.
    account = username.strip().casefold()[:64]
    address = request.client.host if request.client else "?"
    wait = await throttle.retry_after(account=account, address=address)
    if wait:
        error = f"Too many failed logins; try again in {int(wait) + 1} s."
        response = page(
            request, "login.html", 429, username=username, next=safe_next(next), error=error
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await auth.authenticate(db, passwords, username=username.strip(), password=password)
    if user is None:
        await throttle.failed(account=account, address=address)
        error = "Wrong username or password."
        return page(
            request, "login.html", 400, username=username, next=safe_next(next), error=error
        )
    await throttle.succeeded(account=account)
    return await start_login(request, user, safe_next(next))


@router.post("/logout")
async def logout(request: Request, db: DbDep) -> RedirectResponse:
    ending = session_id(request)
    if ending:
        await auth.end_session(db, ending)
        # This browser's open chat tabs go with the session; other devices stay.
        await close_session_sockets(request.app.state.hub.broker, ending)
    response = RedirectResponse("/login", status_code=303)
    # Deleting a __Host- cookie takes the same Secure flag and path that set it.
    set_cookie(request, response, SESSION_COOKIE, "", max_age=0)
    return response


async def room_list_context(request: Request, chat: ChatDep, user: User) -> dict[str, Any]:
    """What the room list shows: the rooms the user can read (app.access), their
    direct messages by the other people's names, online counts and unread."""
    readable = await readable_rooms(request, chat, user)
    directs = [room for room in readable if room.kind == access.DIRECT]
    people = await rooms.direct_people(chat.db, directs, user)
    dm_people = {name for names in people.values() for name in names}
    return {
        # The DMs' people's faces (app.faces); chat_context adds who is here.
        "faces": await faces.by_names(chat.db, dm_people),
        "rooms": [room for room in readable if room.kind != access.DIRECT],
        "directs": directs,
        "direct_people": people,
        "direct_names": {room_id: ", ".join(names) for room_id, names in people.items()},
        # Who has a socket open anywhere, for the dots by the DMs' names.
        "online_people": await chat.online_people() if directs else set(),
        "online": await chat.online(),
        "unread": await chat.unread_counts(user, readable),
        "no_counts": unread.NONE,
        "may_create_room": rooms.may_create(user, chat.settings.room_creation),
    }


async def chat_context(
    request: Request, chat: ChatDep, user: User, room: Any = None
) -> dict[str, Any]:
    context: dict[str, Any] = {
        **await room_list_context(request, chat, user),
        **new_room_context(),
        "room": room,
        "max_length": chat.settings.max_message_length,
    }
    if room is not None:
        context["room_title"] = room.name
        if room.kind == access.DIRECT:
            context["room_title"] = (await rooms.direct_names(chat.db, [room], user))[room.id]
        if room.kind != access.PUBLIC:
            context["room_members"] = await rooms.members(chat.db, room.id)
            context["may_manage"] = rooms.may_manage(room, user)
        context["window"] = await chat.latest_window(room)
        context["members"] = await chat.presence.members(room.id)
        context["faces"] |= await faces.by_names(chat.db, context["members"])
        # Where the "new messages" line goes when the page opens the room.
        context["read_seq"] = context["unread"].get(room.id, unread.NONE).read_seq
    return context


def new_room_context(
    name: str = "", description: str = "", kind: str = access.PUBLIC, error: str | None = None
) -> dict[str, Any]:
    """What the "create a room" form shows: what was typed, and why it was refused."""
    return {
        "new_room": {"name": name, "description": description, "kind": kind},
        "error": error,
        "max_room_name": MAX_ROOM_NAME,
        "max_description": MAX_DESCRIPTION,
    }


@router.post("/rooms")
async def create_room_form(
    request: Request,
    user: PageUser,
    chat: ChatDep,
    name: FormStr,
    description: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = access.PUBLIC,
) -> Response:
    """Create a room from the page and open it. Refused: htmx gets the form back with
    why (a 200, so it is swapped in); a browser without JavaScript the home page (400)."""
    try:
        rooms.check_may_create(user, chat.settings.room_creation)
        room = await rooms.create_room(
            chat.db, name=name, description=description, kind=kind, created_by=user
        )
    except ChatError as exc:
        form = new_room_context(name, description, kind, str(exc))
        if request.headers.get("hx-request") == "true":
            return page(request, "fragments/new_room.html", **form)
        context = {**await chat_context(request, chat, user), **form}
        return page(request, "chat.html", 403 if isinstance(exc, NotAllowed) else 400, **context)
    await announce.room_created(chat.broker, room)
    target = f"/rooms/{room.id}"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.get("/")
async def home(request: Request, user: PageUser, chat: ChatDep) -> HTMLResponse:
    return page(request, "chat.html", **await chat_context(request, chat, user))


@router.get("/rooms")
async def room_list(request: Request, user: PageUser, chat: ChatDep) -> HTMLResponse:
    return page(request, "fragments/rooms.html", **await room_list_context(request, chat, user))


@router.get("/rooms/{room_id}/mentionable")
async def mentionable(
    request: Request,
    user: PageUser,
    room: RoomDep,
    chat: ChatDep,
    q: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    """The composer's ``@`` suggestions: people who can read the room, by prefix."""
    names = await mentions.suggest(chat.db, room.id, q)
    return page(request, "fragments/mention_options.html", names=names)


@router.get("/rooms/{room_id}")
async def room_page(
    request: Request, user: PageUser, room: ListedRoomDep, chat: ChatDep
) -> HTMLResponse:
    context = await chat_context(request, chat, user, room)
    # htmx restoring history it had no snapshot of wants the whole page.
    fragment = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    response = page(request, "fragments/room.html" if fragment else "chat.html", **context)
    # One URL, two bodies: caches (and the back button) must tell them apart.
    response.headers["Vary"] = "HX-Request"
    return response


# As in the API: seqs are positive 64-bit integers (SQLite overflows past them).
Seq = Annotated[int, Query(ge=1, le=MAX_SEQ)]


@router.get("/rooms/{room_id}/messages")
async def more_messages(
    request: Request,
    user: PageUser,
    room: RoomDep,
    chat: ChatDep,
    before: Seq | None = None,
    after: Seq | None = None,
) -> HTMLResponse:
    """History as the room's list loads it: the page before ``before`` (scrolling
    up), or the page after ``after`` (scrolling down from a permalink)."""
    limit = chat.settings.history_page
    if after is not None:
        newer = await chat.newer(room.id, after=after, limit=limit + 1)
        last = newer[limit - 1].seq if len(newer) > limit else None
        window = Window.of(newer[:limit], newer_after=last)
        return page(request, "fragments/newer.html", room=room, window=window)
    if before is None:
        raise HTTPException(400, "Say which messages: before=SEQ or after=SEQ.")
    messages = await chat.window(room.id, before=before, limit=limit)
    return page(request, "fragments/history.html", room=room, window=Window.of(messages))


@router.get("/rooms/{room_id}/messages/{seq}")
async def permalink(
    request: Request,
    user: PageUser,
    room: ListedRoomDep,
    chat: ChatDep,
    seq: Annotated[int, Path(ge=1, le=MAX_SEQ)],
) -> HTMLResponse:
    """A message's permalink: the room opened around it, the message highlighted.
    Whoever cannot read the room gets the unknown room's 404 (ListedRoomDep)."""
    window = await chat.around(room.id, seq)
    if window is None:
        raise HTTPException(404, "No such message.")
    context = await chat_context(request, chat, user, room)
    context.update(window=window, highlight=seq)
    fragment = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    response = page(request, "fragments/room.html" if fragment else "chat.html", **context)
    response.headers["Vary"] = "HX-Request"
    return response


SEARCH_PAGE = 20  # hits per page of the search page


def by_room(hits: list[Hit]) -> list[dict[str, Any]]:
    """Hits grouped by room, rooms in the order of their newest hit."""
    groups: dict[int, dict[str, Any]] = {}
    for hit in hits:
        group = groups.setdefault(
            hit.room_id, {"room_id": hit.room_id, "room_name": hit.room_name, "hits": []}
        )
        group["hits"].append(hit)
    return list(groups.values())


@router.get("/search")
async def search_page(
    request: Request,
    user: PageUser,
    chat: ChatDep,
    q: str = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """The search page; with HX-Request, only its results (the "older results" page)."""
    error, hits, status = None, [], 200
    if len(q) > MAX_QUERY:
        error, status = f"A search is at most {MAX_QUERY:,} characters.", 422
    elif q.strip():
        hits = await chat.search(user, q, before=before, limit=SEARCH_PAGE)
    context: dict[str, Any] = {
        "q": q,
        "before": before,
        "error": error,
        "groups": by_room(hits),
        "older": hits[-1].message_id if len(hits) == SEARCH_PAGE else None,
    }
    if request.headers.get("hx-request") == "true":
        return page(request, "fragments/search_results.html", status, **context)
    context.update(await room_list_context(request, chat, user), room=None)
    return page(request, "search.html", status, **context)


@router.get("/people")
async def people(
    request: Request,
    user: PageUser,
    db: DbDep,
    usernames: Annotated[str, Query(max_length=400)] = "",
) -> HTMLResponse:
    """The "new message" picker's suggestions for the last name being typed."""
    done, _, last = usernames.rpartition(",")
    names = await users.name_suggestions(db, last.strip())
    prefix = f"{done}, " if done.strip() else ""
    return HTMLResponse("".join(f'<option value="{escape(prefix + n)}">' for n in names))


@router.post("/direct")
async def start_direct(user: PageUser, chat: ChatDep, usernames: FormStr) -> Response:
    """Start (or find again) a direct conversation from the page, and open it."""
    names = [name.strip() for name in usernames.split(",") if name.strip()]
    try:
        if len(names) > rooms.MAX_DIRECT:
            raise ChatError(f"A direct conversation has at most {rooms.MAX_DIRECT} people.")
        room, new = await rooms.find_or_create_direct(chat.db, user, names)
    except ChatError as exc:
        return HTMLResponse(render("fragments/error.html", text=str(exc)), status_code=422)
    if new:
        for member in await access.member_ids(chat.db, room.id):
            await announce.rooms_changed(chat.broker, member)
    return Response(status_code=204, headers={"HX-Redirect": f"/rooms/{room.id}"})


@router.post("/rooms/{room_id}/members/remove")
async def remove_member_form(
    user: PageUser, room: ManagedRoomDep, chat: ChatDep, user_id: Annotated[int, Form()]
) -> Response:
    """Remove a member (the creator, an admin) or leave (a member themselves)."""
    try:
        await rooms.remove_member(chat.db, chat.broker, room, user_id, by=user)
    except ChatError as exc:
        return HTMLResponse(render("fragments/error.html", text=str(exc)), status_code=422)
    target = "/" if user_id == user.id else f"/rooms/{room.id}"
    return Response(status_code=204, headers={"HX-Redirect": target})


@router.post("/rooms/{room_id}/members/add")
async def add_member_form(
    user: PageUser, room: ManagedRoomDep, chat: ChatDep, username: FormStr
) -> Response:
    found = await users.user_named(chat.db, username.strip())
    try:
        if found is None:
            raise ChatError(f"There is no user named {username.strip()!r}.")
        await rooms.add_member(chat.db, chat.broker, room, found.id, by=user)
    except ChatError as exc:
        return HTMLResponse(render("fragments/error.html", text=str(exc)), status_code=422)
    return Response(status_code=204, headers={"HX-Redirect": f"/rooms/{room.id}"})


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
