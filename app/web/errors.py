"""HTTP errors as a page for people and as ``{"detail": ...}`` for programs.

A person who follows a stale link or opens /admin without the right gets a page
with a way back; the API, htmx requests and anything that does not ask for
HTML keep FastAPI's JSON answer, which the contract documents.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from app.web.pages import page


def wants_page(request: Request) -> bool:
    return (
        not request.url.path.startswith("/api/")
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
