"""`talkroom reindex` rebuilds the search index while the server runs, in batches,
with a progress bar, and (on SQLite) resumes where an interrupted run stopped."""

from __future__ import annotations

import uuid

from support import Browser, Server, database_url, execute, query


async def hits(browser: Browser, q: str) -> list[int]:
    response = await browser.api("GET", "/api/search", params={"q": q, "limit": 100})
    assert response.status_code == 200, response.text
    return [h["message_id"] for h in response.json()]


async def test_reindex_rebuilds_the_index_in_batches(server: Server, make_user, room: int) -> None:
    alice = await make_user()
    key = "rx" + uuid.uuid4().hex[:8]
    sent = []
    for i in range(7):
        r = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": f"{key} {i}"})
        sent.append(r.json()["id"])
    sqlite = database_url(server).startswith("sqlite")
    if sqlite:  # lose the index behind the server's back
        await execute(server, "INSERT INTO messages_fts(messages_fts) VALUES('delete-all')")
        assert await hits(alice, key) == []
    done = server.cli("reindex", "--batch", "2")
    assert "Search index rebuilt" in done.stdout, done.stdout + done.stderr
    assert "reindex [" in done.stderr and "100.0%" in done.stderr
    assert await hits(alice, key) == sent[::-1]
    if sqlite:
        check = "INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)"
        await execute(server, check)


async def test_an_interrupted_reindex_resumes_and_counts_nothing_twice(
    server: Server, make_user, room: int, unique: str
) -> None:
    if not database_url(server).startswith("sqlite"):
        return  # PostgreSQL rebuilds in one statement: nothing to resume
    alice = await make_user()
    doomed = server.create_room(f"doomed-{unique}")
    key = "ry" + uuid.uuid4().hex[:8]
    sent = []
    for target in (room, doomed, room, doomed, room):
        r = await alice.api("POST", f"/api/rooms/{target}/messages", json={"text": key})
        sent.append(r.json()["id"])
    # As a run stopped after its first batch leaves it: the index emptied, then
    # the messages up to the second indexed, and where it got to.
    (upto,) = (await query(server, "SELECT max(id) FROM messages"))[0]
    await execute(server, "INSERT INTO messages_fts(messages_fts) VALUES('delete-all')")
    await execute(
        server,
        "INSERT INTO messages_fts(rowid, text) SELECT id, text FROM messages WHERE id <= :d",
        d=sent[1],
    )
    await execute(
        server, "INSERT INTO search_reindex (id, upto, done) VALUES (1, :u, :d)", u=upto, d=sent[1]
    )
    assert await hits(alice, key) == sent[1::-1]
    # Meanwhile: a room with rows done and rows pending goes, and a message comes.
    server.cli("deleteroom", str(doomed))
    fresh = await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": key})
    assert await hits(alice, key) == [fresh.json()["id"], sent[0]]
    resumed = server.cli("reindex", "--batch", "1")
    assert "resumed and finished" in resumed.stdout, resumed.stdout + resumed.stderr
    assert await hits(alice, key) == [fresh.json()["id"], sent[4], sent[2], sent[0]]
    assert await query(server, "SELECT * FROM search_reindex") == []
    await execute(
        server, "INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)"
    )
