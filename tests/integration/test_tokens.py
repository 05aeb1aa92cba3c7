"""API tokens from the CLI: created, used, listed, revoked, refused — on a live server."""

from __future__ import annotations

import hashlib
import re

import httpx
from support import Server, query


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored_tokens(server: Server) -> list[tuple[int, str, str]]:
    return await query(server, "SELECT id, token_hash, prefix FROM api_tokens")


async def test_token_lifecycle(server: Server, make_user, room: int) -> None:
    alice = await make_user()

    created = server.cli("token", alice.username)
    token = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"tr_[A-Za-z0-9_-]{40,}", token), created.stdout
    token_id = int(re.search(r"Token (\d+)", created.stdout).group(1))  # type: ignore[union-attr]
    # Only a hash is kept: the token itself is nowhere in the database.
    rows = {row[0]: row for row in await stored_tokens(server)}
    assert rows[token_id][1] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(list(rows.values()))
    second = server.cli("token", alice.username).stdout.strip().splitlines()[-1]
    assert second != token

    async with httpx.AsyncClient(base_url=server.base) as bot:
        me = await bot.get("/api/me", headers=bearer(token))
        assert me.status_code == 200
        assert me.json()["username"] == alice.username
        # No cookie and no CSRF header: a bearer token is enough for writes.
        posted = await bot.post(
            f"/api/rooms/{room}/messages", json={"text": "by token"}, headers=bearer(token)
        )
        assert posted.status_code == 201 and posted.json()["author"] == alice.username

        listed = server.cli("token", alice.username, "--list").stdout
        lines = listed.strip().splitlines()
        assert len(lines) == 2
        mine = next(line for line in lines if line.startswith(f"{token_id}\t"))
        assert token[:10] in mine and token not in listed
        assert "last used never" not in mine  # it was just used

        revoked = server.cli("token", alice.username, "--revoke", str(token_id))
        assert f"Revoked token {token_id}" in revoked.stdout
        # At once, on the running server: no restart, no cache.
        refused = await bot.get("/api/me", headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json() == {"detail": "The API token is invalid or was revoked."}
        still = await bot.get("/api/me", headers=bearer(second))
        assert still.status_code == 200  # the other token lives on

    listed = server.cli("token", alice.username, "--list").stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in listed] != [str(token_id)]
    assert not any(line.startswith(f"{token_id}\t") for line in listed)
    again = server.cli("token", alice.username, "--revoke", str(token_id), check=False)
    assert again.returncode == 1 and "no such token" in again.stderr
    assert "Traceback" not in again.stderr


async def test_a_user_cannot_revoke_someone_elses_token(server: Server, make_user) -> None:
    alice, bob = await make_user(), await make_user()
    out = server.cli("token", alice.username).stdout
    token = out.strip().splitlines()[-1]
    token_id = re.search(r"Token (\d+)", out).group(1)  # type: ignore[union-attr]
    result = server.cli("token", bob.username, "--revoke", token_id, check=False)
    assert result.returncode == 1
    async with httpx.AsyncClient(base_url=server.base) as bot:
        assert (await bot.get("/api/me", headers=bearer(token))).status_code == 200


def test_a_token_for_nobody_is_refused_without_a_traceback(server: Server) -> None:
    result = server.cli("token", "no_such_user_here", check=False)
    assert result.returncode == 1
    assert "no such user" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


async def test_bad_authorization_never_falls_back_to_the_cookie(server: Server, make_user) -> None:
    alice = await make_user()
    assert (await alice.api("GET", "/api/me")).status_code == 200  # the cookie works
    for value in ("Bearer nope", "Bearer tr_" + "x" * 43, "Bearer", "Basic YTpi", "tr_abc"):
        response = await alice.api("GET", "/api/me", headers={"Authorization": value})
        assert response.status_code == 401, value
        assert response.headers["www-authenticate"] == "Bearer"
