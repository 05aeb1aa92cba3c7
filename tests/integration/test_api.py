"""The REST API over a real server: who may call what, errors, pages, fan-out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from support import MESSAGE_RE, Browser, Inbox, Server, running_server
from websockets.exceptions import ConnectionClosed

# (method, path, body, admin only). {room} and {user} are filled in per test.
ENDPOINTS = [
    ("GET", "/api/me", None, False),
    ("PATCH", "/api/me", {"display_name": "{who}"}, False),
    ("GET", "/api/rooms", None, False),
    # Anyone creates rooms by default (TALKROOM_ROOM_CREATION=admins: test_first_run).
    ("POST", "/api/rooms", {"name": "made-by-{who}"}, False),
    ("GET", "/api/rooms/{room}", None, False),
    ("PATCH", "/api/rooms/{room}", {"description": "changed by {who}"}, True),
    ("DELETE", "/api/rooms/{room}", None, True),
    ("GET", "/api/rooms/{room}/messages", None, False),
    ("POST", "/api/rooms/{room}/messages", {"text": "hi from {who}"}, False),
    ("POST", "/api/rooms/{room}/read", {"seq": 1}, False),
    ("GET", "/api/users", None, True),
    ("PATCH", "/api/users/{user}", {"is_admin": False}, True),
    ("DELETE", "/api/users/{user}", None, True),
]


def fill(template: object, **values: object) -> object:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {key: fill(value, **values) for key, value in template.items()}
    return template


async def make_admin(make_user, server: Server) -> Browser:
    admin = await make_user()
    server.set_admin(admin.username)
    return admin


async def user_id(browser: Browser) -> int:
    return (await browser.api("GET", "/api/me")).json()["id"]


def token_for(server: Server, username: str) -> str:
    return server.cli("token", username).stdout.strip().splitlines()[-1]


async def closed_code(ws, timeout: float = 5) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


def test_the_schema_lists_exactly_these_operations(server: Server) -> None:
    schema = httpx.get(f"{server.base}/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
    expected = {
        (method, path.replace("{room}", "{room_id}").replace("{user}", "{user_id}"))
        for method, path, _, _ in ENDPOINTS
    }
    # Membership and direct rooms: tested in test_private_rooms.
    expected |= {
        ("GET", "/api/rooms/{room_id}/members"),
        ("PUT", "/api/rooms/{room_id}/members/{user_id}"),
        ("DELETE", "/api/rooms/{room_id}/members/{user_id}"),
        ("POST", "/api/direct"),
    }
    expected.add(("GET", "/api/search"))  # tested in test_search
    expected.add(("POST", "/api/bots"))  # tested in test_bots
    # Edits, deletes and reactions: tested in test_edit_delete and test_reactions.
    expected |= {
        ("PATCH", "/api/rooms/{room_id}/messages/{message_id}"),
        ("DELETE", "/api/rooms/{room_id}/messages/{message_id}"),
        ("PUT", "/api/rooms/{room_id}/messages/{message_id}/reactions/{emoji}"),
        ("DELETE", "/api/rooms/{room_id}/messages/{message_id}/reactions/{emoji}"),
    }
    # Attachments: tested in test_attachments.
    expected |= {
        ("POST", "/api/rooms/{room_id}/attachments"),
        ("GET", "/attachments/{attachment_id}"),
        ("GET", "/attachments/{attachment_id}/thumbnail"),
    }
    assert documented == expected


@pytest.mark.parametrize(("method", "path", "body", "admin_only"), ENDPOINTS)
async def test_anonymous_gets_401(
    server: Server, room: int, method: str, path: str, body: object, admin_only: bool
) -> None:
    url = fill(path, room=room, user=1)
    payload = fill(body, who="anon")
    async with httpx.AsyncClient(base_url=server.base) as bare:
        response = await bare.request(method, url, json=payload)  # type: ignore[arg-type]
    assert response.status_code == 401, response.text
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"] == "Bearer"
    # A browser that is not logged in, with a valid CSRF token, is anonymous too.
    browser = Browser(server)
    try:
        await browser.fetch_csrf()
        response = await browser.api(method, url, json=payload)
    finally:
        await browser.close()
    assert response.status_code == 401, response.text


async def test_a_user_reads_and_posts_but_admin_writes_are_403(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    before = (await alice.api("GET", f"/api/rooms/{room}")).json()
    for method, path, body, admin_only in ENDPOINTS:
        url = fill(path, room=room, user=await user_id(bob))
        response = await alice.api(method, url, json=fill(body, who=alice.username))
        creates = method == "POST" and not path.endswith("/read")
        expected = 403 if admin_only else 201 if creates else 200
        assert response.status_code == expected, (method, path, response.text)
        if admin_only:
            assert response.json() == {"detail": "Only admins can do that."}
    # Nothing an admin could have changed did change.
    after = (await alice.api("GET", f"/api/rooms/{room}")).json()
    assert after["description"] == before["description"]
    assert (await bob.api("GET", "/api/me")).status_code == 200
    names = [r["name"] for r in (await alice.api("GET", "/api/rooms")).json()]
    assert f"made-by-{alice.username}" in names


async def test_an_admin_can_call_every_endpoint(server: Server, make_user, room: int) -> None:
    admin, victim = await make_admin(make_user, server), await make_user()
    victim_id = await user_id(victim)
    statuses = {}
    for method, path, body, _ in sorted(ENDPOINTS, key=lambda e: e[0] == "DELETE"):
        url = fill(path, room=room, user=victim_id)
        response = await admin.api(method, url, json=fill(body, who=admin.username))
        statuses[(method, path)] = response.status_code
        assert response.status_code < 300, (method, path, response.text)
    assert statuses[("POST", "/api/rooms")] == 201
    assert statuses[("DELETE", "/api/rooms/{room}")] == 204
    assert statuses[("DELETE", "/api/users/{user}")] == 204


async def test_room_lifecycle_with_404_and_409(server: Server, make_user, unique: str) -> None:
    admin = await make_admin(make_user, server)
    created = await admin.api(
        "POST", "/api/rooms", json={"name": f"  lobby-{unique} ", "description": "Hi"}
    )
    assert created.status_code == 201, created.text
    room = created.json()
    assert room["name"] == f"lobby-{unique}" and room["description"] == "Hi"
    assert set(room) == {
        "id",
        "name",
        "description",
        "kind",
        "online",
        "created_at",
        "unread",
        "mentions",
    }
    rid = room["id"]
    assert (await admin.api("GET", f"/api/rooms/{rid}")).json() == room

    duplicate = await admin.api("POST", "/api/rooms", json={"name": f"lobby-{unique}"})
    assert duplicate.status_code == 409
    assert "exists already" in duplicate.json()["detail"]

    other = (await admin.api("POST", "/api/rooms", json={"name": f"other-{unique}"})).json()
    clash = await admin.api("PATCH", f"/api/rooms/{other['id']}", json={"name": f"lobby-{unique}"})
    assert clash.status_code == 409

    renamed = await admin.api(
        "PATCH", f"/api/rooms/{rid}", json={"name": f"hall-{unique}", "description": "New"}
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == (f"hall-{unique}", "New")
    described = await admin.api("PATCH", f"/api/rooms/{rid}", json={"description": "Newer"})
    assert described.json()["name"] == f"hall-{unique}"  # an omitted field stays
    assert described.json()["description"] == "Newer"

    deleted = await admin.api("DELETE", f"/api/rooms/{rid}")
    assert deleted.status_code == 204 and deleted.content == b""
    for method, path, body in [
        ("GET", f"/api/rooms/{rid}", None),
        ("PATCH", f"/api/rooms/{rid}", {"description": "x"}),
        ("DELETE", f"/api/rooms/{rid}", None),
        ("GET", f"/api/rooms/{rid}/messages", None),
        ("POST", f"/api/rooms/{rid}/messages", {"text": "anyone?"}),
    ]:
        response = await admin.api(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {"detail": "No such room."}
    assert rid not in [r["id"] for r in (await admin.api("GET", "/api/rooms")).json()]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/rooms", {}),
        ("POST", "/api/rooms", {"name": "   "}),
        ("POST", "/api/rooms", {"name": "x" * 65}),
        ("POST", "/api/rooms", {"name": "two\nlines"}),
        ("POST", "/api/rooms", {"name": "ok", "description": "d" * 501}),
        ("POST", "/api/rooms", ["not", "an", "object"]),
        ("PATCH", "/api/rooms/{room}", {"name": ""}),
        ("GET", "/api/rooms/abc", None),
        ("GET", "/api/rooms/0", None),
        ("GET", f"/api/rooms/{2**40}", None),
        ("GET", "/api/rooms/{room}/messages?limit=0", None),
        ("GET", "/api/rooms/{room}/messages?limit=101", None),
        ("GET", "/api/rooms/{room}/messages?before=0", None),
        ("GET", "/api/rooms/{room}/messages?before=x", None),
        ("POST", "/api/rooms/{room}/messages", {}),
        ("POST", "/api/rooms/{room}/messages", {"text": ""}),
        ("POST", "/api/rooms/{room}/messages", {"text": " \n\t "}),
        ("POST", "/api/rooms/{room}/messages", {"text": "x" * 4001}),
        ("POST", "/api/rooms/{room}/messages", {"text": "nul\x00"}),
        ("POST", "/api/rooms/{room}/messages", {"text": "hi", "client_id": ""}),
        ("POST", "/api/rooms/{room}/messages", {"text": 5}),
        ("PATCH", "/api/users/{user}", {"is_admin": "maybe"}),
        ("PATCH", "/api/users/{user}", {"is_admin": 0}),
        ("PATCH", "/api/users/0", {"is_admin": True}),
    ],
)
async def test_invalid_requests_get_422(
    server: Server, make_user, room: int, method: str, path: str, body: object
) -> None:
    admin = await make_admin(make_user, server)
    url = fill(path, room=room, user=await user_id(admin))
    response = await admin.api(method, url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_bodies_that_are_not_json_get_422(server: Server, make_user, room: int) -> None:
    admin = await make_admin(make_user, server)
    for content in (b"{not json", b"\xff\xfe\x00garbage", b'{"text": "lone \\ud800"}'):
        response = await admin.api(
            "POST",
            f"/api/rooms/{room}/messages",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (content, response.text)
        assert "detail" in response.json()
    assert (await admin.api("GET", f"/api/rooms/{room}/messages")).json() == []


async def test_unknown_users_are_404_and_admins_cannot_lock_themselves_out(
    server: Server, make_user
) -> None:
    admin = await make_admin(make_user, server)
    me = await user_id(admin)
    assert (
        await admin.api("PATCH", "/api/users/999999", json={"is_admin": True})
    ).status_code == 404
    assert (await admin.api("DELETE", "/api/users/999999")).status_code == 404
    demote = await admin.api("PATCH", f"/api/users/{me}", json={"is_admin": False})
    assert demote.status_code == 409
    assert (await admin.api("DELETE", f"/api/users/{me}")).status_code == 409
    assert (await admin.api("GET", "/api/me")).json()["is_admin"] is True


async def test_cookie_writes_need_the_csrf_header(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    refused = await alice.client.post(f"/api/rooms/{room}/messages", json={"text": "forged"})
    assert refused.status_code == 403
    accepted = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": "mine"})
    assert accepted.status_code == 201
    texts = [m["text"] for m in (await alice.api("GET", f"/api/rooms/{room}/messages")).json()]
    assert texts == ["mine"]


async def test_pagination_walks_the_whole_history_once_in_order(
    server: Server, make_user, room: int
) -> None:
    alice = await make_user()
    token = token_for(server, alice.username)
    total = 237
    async with httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {token}"}
    ) as bot:
        for i in range(total):
            response = await bot.post(f"/api/rooms/{room}/messages", json={"text": f"m{i}"})
            assert response.status_code == 201, response.text
            assert response.json()["seq"] == i + 1

        first = (await bot.get(f"/api/rooms/{room}/messages")).json()
        assert len(first) == 50  # the default page
        for limit in (100, 7):
            seen: list[dict] = []
            before: int | None = None
            pages = 0
            while True:
                params = {"limit": limit, **({"before": before} if before else {})}
                page = (await bot.get(f"/api/rooms/{room}/messages", params=params)).json()
                pages += 1
                if not page:
                    break
                assert len(page) <= limit
                seen.extend(page)
                before = page[-1]["seq"]
            assert [m["seq"] for m in seen] == list(range(total, 0, -1))
            assert [m["text"] for m in seen] == [f"m{i}" for i in range(total - 1, -1, -1)]
            assert len({m["id"] for m in seen}) == total
            assert {m["room_id"] for m in seen} == {room}
            assert {m["author"] for m in seen} == {alice.username}
            assert pages == -(-total // limit) + 1  # full pages, then the empty end
        assert (await bot.get(f"/api/rooms/{room}/messages", params={"before": 1})).json() == []


async def test_a_message_posted_through_the_api_reaches_a_websocket(
    server: Server, make_user, room: int
) -> None:
    alice, bob = await make_user(), await make_user()
    token = token_for(server, alice.username)
    async with await bob.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for(f'data-user="{bob.username}"')
        async with httpx.AsyncClient(base_url=server.base) as bot:
            headers = {"Authorization": f"Bearer {token}"}
            url = f"/api/rooms/{room}/messages"
            body = {"text": "<b>from a bot</b>", "client_id": "bot-1"}
            response = await bot.post(url, json=body, headers=headers)
            assert response.status_code == 201, response.text
            message = response.json()
            frame = await inbox.wait_for(MESSAGE_RE)
            # A retry with the same client_id is the same message, delivered once.
            again = await bot.post(url, json=body, headers=headers)
            assert again.json()["id"] == message["id"]
        await inbox.drain()
    assert f'id="message-{message["id"]}" data-seq="{message["seq"]}"' in frame
    assert "&lt;b&gt;from a bot&lt;/b&gt;" in frame and alice.username in frame
    assert inbox.messages() == [(message["id"], message["seq"])]
    assert message["author"] == alice.username and message["room_id"] == room


async def test_deleting_a_room_tells_its_sockets_and_closes_them_with_1008(
    server: Server, make_user, room: int
) -> None:
    admin, bob = await make_admin(make_user, server), await make_user()
    async with await bob.socket(room) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for(f'data-user="{bob.username}"')
        assert (await admin.api("DELETE", f"/api/rooms/{room}")).status_code == 204
        notice = await inbox.wait_for('data-notice="deleted"')
        assert "was deleted" in notice
        assert await closed_code(ws) == 1008
    async with await bob.socket(room) as ws:  # and it stays gone
        assert await closed_code(ws) == 1008


async def test_admins_grant_rights_and_remove_users_with_their_sessions(
    server: Server, make_user, room: int
) -> None:
    admin, bob = await make_admin(make_user, server), await make_user()
    bob_id = await user_id(bob)
    listed = (await admin.api("GET", "/api/users")).json()
    by_name = {u["username"]: u for u in listed}
    assert by_name[bob.username]["is_admin"] is False and by_name[admin.username]["is_admin"]
    assert set(by_name[bob.username]) == {
        "id",
        "username",
        "is_admin",
        "created_at",
        "display_name",
        "avatar_url",
    }

    granted = await admin.api("PATCH", f"/api/users/{bob_id}", json={"is_admin": True})
    assert granted.status_code == 200 and granted.json()["is_admin"] is True
    assert (await bob.api("GET", "/api/me")).json()["is_admin"] is True
    assert (await bob.api("GET", "/api/users")).status_code == 200
    await admin.api("PATCH", f"/api/users/{bob_id}", json={"is_admin": False})
    assert (await bob.api("GET", "/api/users")).status_code == 403

    token = token_for(server, bob.username)
    async with await bob.socket(room) as ws:
        await Inbox(ws).wait_for(f'data-user="{bob.username}"')
        assert (await admin.api("DELETE", f"/api/users/{bob_id}")).status_code == 204
        assert await closed_code(ws) == 1008
    assert (await bob.api("GET", "/api/me")).status_code == 401  # the session ended
    page = await bob.client.get("/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    async with httpx.AsyncClient(base_url=server.base) as bot:
        gone = await bot.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401  # and so did the token
    assert bob.username not in {
        u["username"] for u in (await admin.api("GET", "/api/users")).json()
    }
    assert (await admin.api("DELETE", f"/api/users/{bob_id}")).status_code == 404


async def test_over_the_rate_limit_is_429_with_retry_after(make_user, tmp_path: Path) -> None:
    with running_server(tmp_path / "limited", message_rate="0.5", message_burst="2") as srv:
        alice = await make_user(target=srv)
        admin = await make_user(target=srv)
        srv.set_admin(admin.username)
        room = srv.create_room("limited")
        url = f"/api/rooms/{room}/messages"
        codes = [
            (await alice.api("POST", url, json={"text": f"{i}"})).status_code for i in range(2)
        ]
        assert codes == [201, 201]
        limited = await alice.api("POST", url, json={"text": "one too many"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "too fast" in limited.json()["detail"]
        for i in range(5):  # admins are exempt
            assert (await admin.api("POST", url, json={"text": f"a{i}"})).status_code == 201
        texts = [m["text"] for m in (await alice.api("GET", url)).json()]
        assert "one too many" not in texts and len(texts) == 7


async def test_ids_beyond_any_column_are_no_such_room_everywhere(server: Server, make_user) -> None:
    alice = await make_user()
    huge = 10**20
    assert (await alice.api("GET", f"/api/rooms/{huge}")).status_code == 422
    assert (await alice.client.get(f"/rooms/{huge}")).status_code == 404
    assert (await alice.client.get(f"/rooms/{huge}/messages?before=2")).status_code == 404
    async with await alice.socket(huge) as ws:
        assert await closed_code(ws) == 1008


def test_the_docs_describe_the_room_sockets_frames(server: Server) -> None:
    """/docs (the schema's description) says what OpenAPI cannot: the socket's frames."""
    description = httpx.get(f"{server.base}/openapi.json").json()["info"]["description"]
    for frame in ('{"message"', '{"read": SEQ}', '{"typing": true}', "?after=SEQ"):
        assert frame in description
