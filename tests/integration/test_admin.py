"""The admin page over a real server, called the way its htmx attributes do."""

from __future__ import annotations

import re

import pytest
from support import Browser, Inbox, Server

HTMX = {"HX-Request": "true"}


async def make_admin(make_user, server: Server) -> Browser:
    admin = await make_user()
    server.set_admin(admin.username)
    return admin


def room_ids(html: str) -> dict[str, int]:
    """Room name -> id, from the rows of the rooms section."""
    rows = re.findall(r'<li data-room="(\d+)">.*?name="name" value="([^"]*)"', html, re.S)
    return {name: int(rid) for rid, name in rows}


async def test_an_admin_creates_edits_and_deletes_a_room_through_the_page(
    server: Server, make_user, unique: str
) -> None:
    admin, bob = await make_admin(make_user, server), await make_user()
    page = await admin.client.get("/admin")
    assert page.status_code == 200
    assert 'id="admin-rooms"' in page.text and 'id="admin-users"' in page.text
    assert 'hx-post="/admin/rooms"' in page.text
    await admin.fetch_csrf("/admin")

    name = f"made-in-admin-{unique}"
    created = await admin.api(
        "POST", "/admin/rooms", data={"name": name, "description": "From the page"}, headers=HTMX
    )
    assert created.status_code == 200
    assert created.text.startswith('<section id="admin-rooms"')  # the section htmx swaps
    assert f"Created room {name}." in created.text
    rid = room_ids(created.text)[name]
    api_room = (await bob.api("GET", f"/api/rooms/{rid}")).json()
    assert (api_room["name"], api_room["description"]) == (name, "From the page")

    duplicate = await admin.api("POST", "/admin/rooms", data={"name": name}, headers=HTMX)
    assert 'role="alert"' in duplicate.text and "exists already" in duplicate.text

    edited = await admin.api(
        "PATCH",
        f"/admin/rooms/{rid}",
        data={"name": f"{name}-2", "description": "Renamed"},
        headers=HTMX,
    )
    assert f"Saved room {name}-2." in edited.text
    api_room = (await bob.api("GET", f"/api/rooms/{rid}")).json()
    assert (api_room["name"], api_room["description"]) == (f"{name}-2", "Renamed")

    async with await bob.socket(rid) as ws:
        inbox = Inbox(ws)
        await inbox.wait_for(f'data-user="{bob.username}"')
        deleted = await admin.api("DELETE", f"/admin/rooms/{rid}", headers=HTMX)
        assert "Deleted the room" in deleted.text
        assert f"{name}-2" not in room_ids(deleted.text)
        await inbox.wait_for('data-notice="deleted"')
    assert (await bob.api("GET", f"/api/rooms/{rid}")).status_code == 404


async def test_an_admin_manages_users_through_the_page(server: Server, make_user) -> None:
    admin, bob = await make_admin(make_user, server), await make_user()
    await admin.fetch_csrf("/admin")
    bob_id = (await bob.api("GET", "/api/me")).json()["id"]
    page = (await admin.client.get("/admin")).text
    assert f'data-user="{bob.username}"' in page

    promoted = await admin.api(
        "PATCH", f"/admin/users/{bob_id}", data={"is_admin": "true"}, headers=HTMX
    )
    assert f"{bob.username} is now an admin." in promoted.text
    assert (await bob.client.get("/admin")).status_code == 200
    await admin.api("PATCH", f"/admin/users/{bob_id}", data={"is_admin": "false"}, headers=HTMX)
    assert (await bob.client.get("/admin")).status_code == 403

    admin_id = (await admin.api("GET", "/api/me")).json()["id"]
    myself = await admin.api("DELETE", f"/admin/users/{admin_id}", headers=HTMX)
    assert "cannot remove yourself" in myself.text

    removed = await admin.api("DELETE", f"/admin/users/{bob_id}", headers=HTMX)
    assert "Removed the user." in removed.text
    assert f'data-user="{bob.username}"' not in removed.text
    assert (await bob.api("GET", "/api/me")).status_code == 401  # logged out at once


async def test_a_non_admin_gets_403_everywhere_and_nothing_changes(
    server: Server, make_user, room: int, unique: str
) -> None:
    alice = await make_user()
    alice_id = (await alice.api("GET", "/api/me")).json()["id"]
    assert (await alice.client.get("/admin")).status_code == 403
    for method, path, data in [
        ("POST", "/admin/rooms", {"name": f"sneaky-{unique}"}),
        ("PATCH", f"/admin/rooms/{room}", {"name": f"sneaky-{unique}"}),
        ("DELETE", f"/admin/rooms/{room}", None),
        ("PATCH", f"/admin/users/{alice_id}", {"is_admin": "true"}),
        ("DELETE", f"/admin/users/{alice_id}", None),
    ]:
        response = await alice.api(method, path, data=data, headers=HTMX)
        assert response.status_code == 403, (method, path)
    assert (await alice.api("GET", f"/api/rooms/{room}")).json()["name"] == f"room-{unique}"
    assert (await alice.api("GET", "/api/me")).json()["is_admin"] is False


@pytest.mark.parametrize("path", ["/admin"])
async def test_anonymous_visitors_are_sent_to_log_in(server: Server, path: str) -> None:
    browser = Browser(server)
    try:
        response = await browser.client.get(path)
    finally:
        await browser.close()
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin"


async def test_admin_actions_need_the_csrf_token(server: Server, make_user, unique: str) -> None:
    admin = await make_admin(make_user, server)
    forged = await admin.client.post("/admin/rooms", data={"name": f"forged-{unique}"})
    assert forged.status_code == 403
    names = [r["name"] for r in (await admin.api("GET", "/api/rooms")).json()]
    assert f"forged-{unique}" not in names


async def test_the_cli_does_what_the_admin_page_does(
    server: Server, make_user, unique: str
) -> None:
    bob = await make_user()
    rid = server.create_room(f"cli-{unique}", "From the shell")
    assert f"{rid}\tcli-{unique}\tFrom the shell" in server.cli("rooms").stdout

    server.cli("editroom", str(rid), "--name", f"cli2-{unique}", "--description", "Edited")
    room = (await bob.api("GET", f"/api/rooms/{rid}")).json()
    assert (room["name"], room["description"]) == (f"cli2-{unique}", "Edited")
    taken = server.cli("createroom", f"cli2-{unique}", check=False)
    assert taken.returncode == 1 and "exists already" in taken.stderr

    assert f"\t{bob.username}\tuser" in server.cli("users").stdout
    server.cli("setadmin", bob.username)
    assert (await bob.api("GET", "/api/me")).json()["is_admin"] is True
    server.cli("setadmin", bob.username, "--off")
    assert (await bob.api("GET", "/api/me")).json()["is_admin"] is False

    server.cli("deleteroom", str(rid))
    assert (await bob.api("GET", f"/api/rooms/{rid}")).status_code == 404
    missing = server.cli("deleteroom", str(rid), check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr

    server.cli("deleteuser", bob.username)
    assert (await bob.api("GET", "/api/me")).status_code == 401
    nobody = server.cli("deleteuser", bob.username, check=False)
    assert nobody.returncode == 1 and "no such user" in nobody.stderr
    assert "Traceback" not in missing.stderr + nobody.stderr


async def test_a_person_refused_or_lost_gets_a_page_and_a_program_gets_json(
    server: Server, make_user
) -> None:
    alice = await make_user()
    html = {"Accept": "text/html,application/xhtml+xml"}
    refused = await alice.client.get("/admin", headers=html)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "Only admins can see this page." in refused.text and 'href="/"' in refused.text
    lost = await alice.client.get("/no/such/page", headers=html)
    assert lost.status_code == 404 and "<h2" in lost.text and "Not Found" in lost.text
    for path in ("/api/nothing-here", "/no/such/page"):
        answer = await alice.client.get(path, headers={"Accept": "application/json"})
        assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}
    swapped = await alice.client.get("/admin", headers={**html, "HX-Request": "true"})
    assert swapped.status_code == 403 and "detail" in swapped.json()
