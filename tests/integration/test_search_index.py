"""The search index is kept in step by the writer, in the insert's transaction, on
SQLite (FTS5) and PostgreSQL (GIN tsvector), and leaves with cascaded deletes."""

from __future__ import annotations

import uuid

from support import Browser, Server, database_url, query


def _hits(server: Server, word: str) -> str:
    if database_url(server).startswith("sqlite"):
        return "SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q"
    return "SELECT id FROM messages WHERE to_tsvector('simple', text) @@ to_tsquery('simple', :q)"


async def test_messages_sent_are_in_the_index_at_once(server: Server) -> None:
    word = "zq" + uuid.uuid4().hex[:8]
    room = server.create_room("idx-" + word)
    alice = Browser(server)
    try:
        assert (await alice.register("i" + word[:10])).status_code == 303
        sent = [
            (await alice.api("POST", f"/api/rooms/{room}/messages", json={"text": t})).json()["id"]
            for t in (f"Café {word}", f"nothing here {word}x", "other")
        ]
        sql = _hits(server, word)
        assert [r[0] for r in await query(server, sql, q=word)] == sent[:1]
        prefix = f'"{word}" *' if database_url(server).startswith("sqlite") else f"{word}:*"
        assert sorted(r[0] for r in await query(server, sql, q=prefix)) == sent[:2]
        if database_url(server).startswith("sqlite"):  # accents folded by remove_diacritics 2
            assert sent[0] in [r[0] for r in await query(server, sql, q="cafe")]
        alice_api = await alice.api("DELETE", f"/api/rooms/{room}")  # not an admin: refused
        assert alice_api.status_code == 403
        server.cli("deleteroom", str(room))  # cascades: the index forgets the rows
        assert await query(server, sql, q=word) == []
    finally:
        await alice.close()
