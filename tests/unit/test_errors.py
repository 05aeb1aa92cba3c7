"""app.web.errors on a tiny app: a room id no row can have is a 422 in the API and
Not Found on a page, while any other invalid path stays a 422."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.web import errors
from app.web.deps import RoomId, UserId


def tiny_app() -> FastAPI:
    app = FastAPI(exception_handlers=errors.EXCEPTION_HANDLERS)

    @app.get("/rooms/{room_id}")
    @app.get("/api/rooms/{room_id}")
    async def room(room_id: RoomId) -> int:
        return room_id

    @app.get("/users/{user_id}")
    async def user(user_id: UserId) -> int:
        return user_id

    return app


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/rooms/1", 200),
        ("/rooms/0", 404),
        (f"/rooms/{10**20}", 404),
        ("/rooms/abc", 422),  # not an id at all: malformed, as before the one dependency
        ("/api/rooms/0", 422),  # the API documents its bounds
        (f"/api/rooms/{10**20}", 422),
        ("/users/0", 422),
    ],
)
async def test_room_ids_out_of_range(path: str, status: int) -> None:
    transport = httpx.ASGITransport(app=tiny_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == status
    if status == 404:
        assert response.json() == {"detail": "No such room."}
