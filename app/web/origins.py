"""Which pages may open a WebSocket: the page's own origin, or one listed.

A browser sends Origin on every WebSocket handshake and the server cannot rely
on SameSite cookies for sockets, so this check is what keeps another site's
page from chatting in a signed-in user's name.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from app.settings import Settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str:
    """scheme://host:port, or "" for anything that is not a plain origin (a browser
    never sends a user, path or query in Origin; a bad port raises ValueError)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return ""
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return ""
    return f"{parts.scheme}://{parts.hostname}:{port or DEFAULT_PORTS[parts.scheme]}"


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Same origin as the page, or listed; a client without Origin is no browser page."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    own = normalize_origin(f"{scheme}://{websocket.headers.get('host', '')}")
    allowed = {own, *(normalize_origin(o) for o in settings.allowed_origins)}
    given = normalize_origin(origin)
    return bool(given) and given in allowed
