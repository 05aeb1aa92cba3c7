"""Every exception handler of the app, in one place.

HTTP errors are a page for people and ``{"detail": ...}`` for programs: a person
who follows a stale link or opens /admin without the right gets a page with a
way back; the API, htmx requests and anything that does not ask for HTML keep
FastAPI's JSON answer, which the contract documents. The domain's errors become
HTTP answers here too, so no route repeats an ``HTTPException`` block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app import users
from app.auth import AuthError
from app.db import unavailable
from app.errors import (
    ChatError,
    Conflict,
    MessageNotFound,
    NotAllowed,
    RateLimited,
    RoomExists,
    RoomNotFound,
    UploadTooLarge,
)
from app.errors import UserNotFound as NoSuchUser
from app.web.deps import NO_SUCH_ROOM, LoginRequired
from app.web.pages import page

logger = logging.getLogger(__name__)

DATABASE_DOWN = "The database is not answering; nothing was saved. Try again in a moment."
# pydantic's error types for a number below ge= or above le=.
OUT_OF_RANGE = frozenset({"greater_than_equal", "less_than_equal"})

STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (RoomNotFound, 404),
    (MessageNotFound, 404),
    (NoSuchUser, 404),
    (NotAllowed, 403),
    (users.UserNotFound, 404),
    (RoomExists, 409),
    (users.SelfLockout, 409),
    (Conflict, 409),
    (RateLimited, 429),
    (UploadTooLarge, 413),
)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def wants_page(request: Request) -> bool:
    return (
        not is_api(request)
        and "HX-Request" not in request.headers
        and "text/html" in request.headers.get("accept", "")
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not wants_page(request):
        return await http_exception_handler(request, exc)
    title = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if exc.detail != title else "There is nothing to show here."
    response = page(request, "error.html", exc.status_code, title=title, detail=detail)
    response.headers.update(exc.headers or {})
    return response


async def login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.location, status_code=303)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """ChatError and AuthError, which the user caused, as ``{"detail": ...}``."""
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 422)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, without echoing the input back: it can be large, and a lone
    surrogate in it cannot even be encoded as UTF-8 (which would turn a 422 into a 500)."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if not is_api(request) and any(room_id_out_of_range(e) for e in errors):
        return await http_error(request, HTTPException(404, NO_SUCH_ROOM))
    detail = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


def room_id_out_of_range(error: Any) -> bool:
    """Pages and the API share one room dependency, whose bounds the API documents
    as a 422. On a page an id that no row can have is an unknown room, Not Found, as
    it was when the page looked such an id up (tests/integration/test_api.py)."""
    return tuple(error["loc"]) == ("path", "room_id") and error["type"] in OUT_OF_RANGE


async def unparsable_body(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 for a body that is not even text; for the API that is one
    more kind of unprocessable request (422), as the contract lists."""
    if is_api(request):
        return JSONResponse({"detail": "The body is not valid UTF-8 JSON."}, status_code=422)
    assert isinstance(exc, HTTPException)
    return await http_exception_handler(request, exc)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with every method the path has in ``Allow``: each FastAPI route holds one
    method, and Starlette would list only the first route's."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            allowed |= route.methods
    headers = {"Allow": ", ".join(sorted(allowed))}
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After while the database is away; anything else is a bug (500)."""
    if not unavailable(exc):
        raise exc
    logger.warning("The database is not answering: %s", type(exc).__name__)
    headers = {"Retry-After": "5"}
    if is_api(request):
        return JSONResponse({"detail": DATABASE_DOWN}, status_code=503, headers=headers)
    return PlainTextResponse(DATABASE_DOWN, status_code=503, headers=headers)


# Starlette picks the handler of the closest class in the exception's MRO, so the
# order here does not matter; 400 and 405 are HTTPExceptions by status code.
Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]
EXCEPTION_HANDLERS: dict[int | type[Exception], Handler] = {
    HTTPException: http_error,
    LoginRequired: login_required,
    DBAPIError: database_unavailable,
    OSError: database_unavailable,
    TimeoutError: database_unavailable,
    PoolTimeout: database_unavailable,
    ChatError: domain_error,
    AuthError: domain_error,
    RequestValidationError: validation_error,
    400: unparsable_body,
    405: method_not_allowed,
}
