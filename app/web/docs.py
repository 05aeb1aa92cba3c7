"""/docs without the internet, and the security schemes of /openapi.json.

FastAPI's own /docs page loads Swagger UI from a CDN. Here the page loads it
from the pinned ``fastapi-offline`` package (maintained, and it ships just the
bundle, the CSS and a favicon), and starts it from app/static/docs.js rather
than an inline script. That script also adds this browser's CSRF token to the
requests "Try it out" makes, so a logged-in admin can use every operation from
the page itself; scripts use a bearer token instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse

from app.auth import SESSION_COOKIE
from app.web.pages import page

ASSETS = Path(fastapi_offline.__file__).parent / "static"
SERVED = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})
UNSAFE = frozenset({"post", "put", "patch", "delete"})

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `talkroom token USERNAME`. No CSRF header needed.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The browser session, set by logging in at /login.",
    },
    "csrfHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": (
            "With the session cookie, unsafe methods need this browser's CSRF token "
            "(this page adds it for you)."
        ),
    },
}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return page(request, "docs.html", openapi_url=request.app.openapi_url)


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> FileResponse:
    if name not in SERVED:
        raise HTTPException(404, "No such file.")
    # Pinned with the package version: a long cache is safe until an upgrade.
    return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus who may call what: a bearer token, or the session
    cookie (with the CSRF header on unsafe methods)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
    )
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            cookie: dict[str, list[str]] = (
                {"sessionCookie": [], "csrfHeader": []}
                if method in UNSAFE
                else {"sessionCookie": []}
            )
            operation["security"] = [{"bearerToken": []}, cookie]
    app.openapi_schema = schema
    return schema


# What /docs says about the room socket, which OpenAPI cannot describe.
DESCRIPTION = """\
**The room socket** `/ws/rooms/{id}?after=SEQ` (the session cookie; an `Origin` of the
page's own or `TALKROOM_ALLOWED_ORIGINS`) takes JSON text frames:

- `{"message": "...", "client_id": "..."}` posts (a repeated `client_id` saves once);
- `{"read": SEQ}` moves your read position (clamped to the room's last seq, never back;
  never an error that closes the socket); every tab of yours gets the new unread and
  mention counts;
- `{"typing": true}` shows "NAME is typing…" to the others for about 5 s: never saved,
  at most one broadcast per user and room every 2 s, across workers.

It sends HTML fragments that htmx swaps by id. `seq` numbers every change in a room (a
message, an edit, a delete, a reaction); `?after=SEQ` brings the room up to date from
SEQ: new messages appended, each changed message once in its current state.
"""

TAGS = [
    {"name": "account", "description": "Who you are."},
    {
        "name": "rooms",
        "description": "Everyone reads rooms; admins create, change and delete them.",
    },
    {
        "name": "messages",
        "description": "History pages by `seq`, posting like a browser does, editing, "
        "deleting (tombstones) and reacting; every change takes the room's next `seq`.",
    },
    {"name": "users", "description": "Accounts, for admins."},
]


def install(app: FastAPI) -> None:
    """Serve /docs offline and describe the security schemes (call with
    ``docs_url=None`` given to FastAPI, so its CDN page is not registered)."""
    app.include_router(router)
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]  # FastAPI's documented hook
